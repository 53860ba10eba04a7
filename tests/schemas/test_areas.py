from __future__ import annotations

from pathlib import Path

from linkwatch.schemas.areas import area_key, read_areas
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.schemas.validation import ColumnMapping

HEADER = (
    "pc4,year,households,ses_woa_mean,ses_quintile,population_male_0_14,population_female_65_plus\n"
)


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "areas.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_cbs_conventions_suppressed_values_and_decimal_commas(tmp_path: Path) -> None:
    path = write(tmp_path, '1011,2021,4800,"0,153",2,120,.\n9999,2021,.,.,.,.,.\n')
    records, problems = read_areas(path)
    assert problems == []
    first, second = records
    assert first["ses_woa_mean"] == 0.153
    assert first["households"] == 4800
    assert first["population"] == [{"age_band": "AGE_0_14", "sex": "MALE", "count": 120}]
    assert second["ses_woa_mean"] is None
    assert second["ses_quintile"] is None
    assert second["population"] == []
    registry = SchemaRegistry.shipped()
    for record in records:
        assert registry.decode(registry.encode(record, "area_ses"))[1] == record
    assert area_key(first) == b"1011/2021"


def test_missing_quintiles_follow_the_area_score_distribution(tmp_path: Path) -> None:
    rows = "".join(f"{1000 + i},2022,100,{(i - 50) / 50:.3f},,1,1\n" for i in range(100))
    records, problems = read_areas(write(tmp_path, rows))
    assert problems == []
    by_score = sorted(records, key=lambda r: r["ses_woa_mean"])
    quintiles = [r["ses_quintile"] for r in by_score]
    assert quintiles == sorted(quintiles, reverse=True)  # highest score -> quintile 1
    assert {q: quintiles.count(q) for q in set(quintiles)} == {1: 20, 2: 20, 3: 20, 4: 20, 5: 20}


def test_bad_rows_are_named_and_good_rows_kept(tmp_path: Path) -> None:
    body = (
        "1011,2021,100,0.1,2,5,5\n"
        "0123,2021,100,0.1,2,5,5\n"
        "1012,2021,1x0,0.1,7,-3,5\n"
        "1013,1850,100,0.1,2,5,5\n"
    )
    records, problems = read_areas(write(tmp_path, body))
    assert [r["pc4"] for r in records] == ["1011"]
    found = {(p.record_number, p.field) for p in problems}
    assert found == {
        (2, "pc4"),
        (3, "households"),
        (3, "ses_quintile"),
        (3, "population_male_0_14"),
        (4, "year"),
    }


def test_a_mapping_reads_other_column_names(tmp_path: Path) -> None:
    path = write(tmp_path, "1011,2021,0.5\n", header="postcode,jaar,ses_score\n")
    mapping = ColumnMapping({"postcode": "pc4", "jaar": "year", "ses_score": "ses_woa_mean"})
    records, problems = read_areas(path, mapping=mapping)
    assert problems == []
    assert records[0]["pc4"] == "1011"
    assert records[0]["ses_woa_mean"] == 0.5


def test_a_table_without_its_key_columns_is_refused(tmp_path: Path) -> None:
    records, problems = read_areas(write(tmp_path, "1011\n", header="postcode\n"))
    assert records == []
    assert problems[0].record_number == 0
    assert "pc4,year" in problems[0].field
