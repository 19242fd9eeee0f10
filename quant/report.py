"""Tables a person reads: one printer for every table we print, and the drift table."""

from __future__ import annotations

from typing import Sequence

from runtime.manifest import DriftReport

DRIFT_COLUMNS = [  # (header, metric, format)
    ("MB", "bytes", "{:.1f}"), ("peak MB", "peak_rss_mb", "{:.0f}"), ("cosine", "cosine", "{:.6f}"),
    ("max rel", "max_rel_error", "{:.1e}"), ("KL mean", "kl_mean", "{:.2e}"), ("KL p99", "kl_p99", "{:.2e}"),
    ("top-1", "top1", "{:.3f}"), ("greedy", "greedy_match", "{:.3f}"), ("CER", "cer", "{:.3f}"),
    ("eval CER", "eval_cer", "{:.2%}"), ("eval WER", "eval_wer", "{:.2%}"), ("lang", "language_accuracy", "{:.1%}"),
    ("ts MAE s", "timestamp_mae_s", "{:.3f}"),
]


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, left: int = 1) -> str:
    """Columns padded to their widest cell; the first `left` columns left-aligned, numbers right."""
    cells = [[str(c) for c in header]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in cells]
    return "\n".join([lines[0], "-" * len(lines[0])] + lines[1:])


def drift_table(report: DriftReport, failed: Sequence[str] = ()) -> str:
    measured = [c for c in DRIFT_COLUMNS if any(getattr(m, c[1]) is not None for m in report.variants.values())]
    rows = []
    for variant, m in report.variants.items():
        cells: list[object] = [variant]
        for _, metric, fmt in measured:
            value = getattr(m, metric)
            if metric == "bytes":
                value = value / 1e6
            cells.append(None if value is None else fmt.format(value))
        cells.append("FAIL" if any(f.startswith(variant + ":") for f in failed) else "ok")
        rows.append(cells)
    ref = report.reference
    head = (f"drift against the {ref.kind} ({ref.dtype}, {ref.device}) on {', '.join(ref.audio)}: {ref.positions} "
            f"positions (top {ref.tokens_per_position} tokens each), {ref.greedy_tokens} greedy tokens per clip")
    return head + "\n" + format_table(["variant"] + [h for h, _, _ in measured] + ["check"], rows)
