"""Dutch provinces and the 4-digit postcode (PC4) ranges that fall in them.

Postcode areas do not follow provincial borders exactly; these ranges assign each
PC4 to the province that holds most of its range, which is close enough for
regional surveillance panels and is the mapping the dashboards and the enrich stage
share. Areas delivered with their own region keep it.
"""

from __future__ import annotations

PROVINCES = (
    "Groningen",
    "Friesland",
    "Drenthe",
    "Overijssel",
    "Flevoland",
    "Gelderland",
    "Utrecht",
    "Noord-Holland",
    "Zuid-Holland",
    "Zeeland",
    "Noord-Brabant",
    "Limburg",
)

# (first PC4, last PC4, province), inclusive, sorted and non-overlapping.
PC4_RANGES: tuple[tuple[int, int, str], ...] = (
    (1000, 1299, "Noord-Holland"),
    (1300, 1379, "Flevoland"),
    (1380, 2199, "Noord-Holland"),
    (2200, 3399, "Zuid-Holland"),
    (3400, 3999, "Utrecht"),
    (4000, 4199, "Gelderland"),
    (4200, 4299, "Zuid-Holland"),
    (4300, 4599, "Zeeland"),
    (4600, 5799, "Noord-Brabant"),
    (5800, 6499, "Limburg"),
    (6500, 7399, "Gelderland"),
    (7400, 7799, "Overijssel"),
    (7800, 7999, "Drenthe"),
    (8000, 8199, "Overijssel"),
    (8200, 8399, "Flevoland"),
    (8400, 9299, "Friesland"),
    (9300, 9499, "Drenthe"),
    (9500, 9999, "Groningen"),
)


def province_of_pc4(pc4: str) -> str:
    """The province of a 4-digit postcode such as ``'9712'``; ValueError for anything else."""
    if len(pc4) != 4 or not pc4.isdigit() or pc4[0] == "0":
        raise ValueError(f"PC4 {pc4!r}: expected four digits from 1000 to 9999")
    number = int(pc4)
    for first, last, province in PC4_RANGES:
        if first <= number <= last:
            return province
    raise ValueError(f"PC4 {pc4!r} is in no known province range")
