"""Self-contained HTML charts (inline SVG, no JavaScript, no plotting library).

Two charts serve the data steward: the match weight of every comparison level of a model (what
``linkwatch linkage explain`` draws), and the precision / recall / F1 of scored pairs against the
match-weight threshold, with the model's link threshold marked (``linkwatch linkage evaluate``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from linkwatch.linkage.evaluation import Evaluation, ThresholdPoint
from linkwatch.linkage.fellegi_sunter import FellegiSunterModel

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
svg text {{ font-size: 12px; }}
</style></head><body>
<h1>{title}</h1>
{body}
</body></html>
"""


def _esc(text: object) -> str:
    return html.escape(str(text))


def model_weights_html(model: FellegiSunterModel) -> str:
    """A page with one horizontal bar per comparison level: its match weight (log2 m/u)."""
    rows = [
        (c.spec.name, lvl.spec.label, lvl.spec.description, lvl.weight, lvl.m, lvl.u)
        for c in model.comparisons
        for lvl in c.levels
    ]
    bar_height, label_width, plot_width = 18, 330, 420
    low = min(min(r[3] for r in rows), 0.0)
    high = max(max(r[3] for r in rows), 0.0)
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return label_width + (value - low) / span * plot_width

    parts = []
    y = 10
    previous = None
    for name, label, description, weight, _, _ in rows:
        if name != previous:
            y += 8
            previous = name
        x0, x1 = sorted((x(0.0), x(weight)))
        colour = "#2c7bb6" if weight >= 0 else "#d7191c"
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end">'
            f"{_esc(name)}: {_esc(label)}</text>"
            f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 0.5):.1f}" height="{bar_height - 4}" '
            f'fill="{colour}"><title>{_esc(description)}: {weight:.2f}</title></rect>'
            f'<text x="{x1 + 4:.1f}" y="{y + 13}">{weight:+.2f}</text>'
        )
        y += bar_height
    axis = x(0.0)
    svg = (
        f'<svg width="{label_width + plot_width + 80}" height="{y + 20}" role="img" '
        f'aria-label="match weight per comparison level">'
        f'<line x1="{axis:.1f}" y1="0" x2="{axis:.1f}" y2="{y + 10}" stroke="#555"/>'
        + "".join(parts)
        + "</svg>"
    )
    table = "".join(
        f"<tr><td>{_esc(n)}</td><td>{_esc(lab)}</td><td>{_esc(d)}</td><td>{m:.4g}</td><td>{u:.4g}</td>"
        f"<td>{w:+.2f}</td></tr>"
        for n, lab, d, w, m, u in rows
    )
    body = (
        f"<p>Prior match probability {model.prior:.3g} (weight {model.prior_weight:+.2f}); link at "
        f"probability ≥ {model.link_threshold} (weight {model.link_weight:+.2f}), review at ≥ "
        f"{model.review_threshold} (weight {model.review_weight:+.2f}). Missing values weigh 0.</p>"
        f"{svg}<table><tr><th>comparison</th><th>level</th><th>meaning</th><th>m</th><th>u</th>"
        f"<th>weight</th></tr>{table}</table>"
    )
    return _PAGE.format(title="linkwatch model: match weight per comparison level", body=body)


def evaluation_html(
    evaluation: Evaluation,
    curve: Sequence[ThresholdPoint] = (),
    link_weight: float | None = None,
) -> str:
    """A page with the cluster scores and, given scored pairs, a precision/recall/F1 curve."""
    a, c = evaluation.all_pairs, evaluation.cross_source
    table = (
        "<table><tr><th>pairs</th><th>precision</th><th>recall</th><th>F1</th><th>true pairs</th>"
        "<th>predicted pairs</th></tr>"
        f"<tr><td>all</td><td>{a.precision:.4f}</td><td>{a.recall:.4f}</td><td>{a.f1:.4f}</td>"
        f"<td>{a.true_pairs}</td><td>{a.predicted_pairs}</td></tr>"
        f"<tr><td>cross-source</td><td>{c.precision:.4f}</td><td>{c.recall:.4f}</td><td>{c.f1:.4f}</td>"
        f"<td>{c.true_pairs}</td><td>{c.predicted_pairs}</td></tr></table>"
        f"<p>{evaluation.records} records; {evaluation.predicted_persons} persons found, "
        f"{evaluation.true_persons} true persons.</p>"
    )
    svg = ""
    if curve:
        width, height, pad = 640, 320, 40
        lo = min(p.threshold for p in curve)
        hi = max(p.threshold for p in curve)
        span = (hi - lo) or 1.0

        def px(t: float) -> float:
            return pad + (t - lo) / span * (width - 2 * pad)

        def py(v: float) -> float:
            return height - pad - v * (height - 2 * pad)

        lines = []
        for attr, colour in (("precision", "#2c7bb6"), ("recall", "#d7191c"), ("f1", "#1a9641")):
            points = " ".join(f"{px(p.threshold):.1f},{py(getattr(p, attr)):.1f}" for p in curve)
            lines.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
            )
            lines.append(
                f'<text x="{width - pad + 4}" y="{py(getattr(curve[-1], attr)):.1f}" '
                f'fill="{colour}">{attr}</text>'
            )
        if link_weight is not None and lo <= link_weight <= hi:
            lx = px(link_weight)
            lines.append(
                f'<line x1="{lx:.1f}" y1="{pad}" x2="{lx:.1f}" y2="{height - pad}" stroke="#777" '
                f'stroke-dasharray="4 3"/><text x="{lx + 3:.1f}" y="{pad + 10}">'
                "link threshold</text>"
            )
        axes = (
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
            'stroke="#555"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#555"/>'
            f'<text x="{width / 2:.0f}" y="{height - 8}" text-anchor="middle">'
            "match weight threshold</text>"
            f'<text x="{pad - 4}" y="{py(1.0) + 4:.1f}" text-anchor="end">1</text>'
            f'<text x="{pad - 4}" y="{py(0.0) + 4:.1f}" text-anchor="end">0</text>'
            f'<text x="{pad}" y="{height - pad + 14}" text-anchor="middle">{lo:.0f}</text>'
            f'<text x="{width - pad}" y="{height - pad + 14}" '
            f'text-anchor="middle">{hi:.0f}</text>'
        )
        svg = (
            "<h2>Scored pairs: precision, recall and F1 by threshold</h2>"
            f'<svg width="{width + 60}" height="{height}" role="img" '
            f'aria-label="precision and recall by threshold">{axes}{"".join(lines)}</svg>'
        )
    return _PAGE.format(title="linkwatch linkage evaluation", body=table + svg)
