"""The drift report as a table a person reads."""

from __future__ import annotations

COLUMNS = [  # (header, metric, format)
    ("variant", None, "{}"), ("MB", "bytes", "{:.1f}"), ("peak MB", "peak_rss_mb", "{:.0f}"),
    ("cosine", "cosine", "{:.6f}"), ("max rel", "max_rel_error", "{:.1e}"), ("KL mean", "kl_mean", "{:.2e}"),
    ("KL p99", "kl_p99", "{:.2e}"), ("top-1", "top1", "{:.3f}"), ("greedy", "greedy_match", "{:.3f}"),
    ("CER", "cer", "{:.3f}"),
]


def table(report: dict, failed: list[str] = ()) -> str:
    rows = [[h for h, _, _ in COLUMNS] + ["check"]]
    for variant, m in report["variants"].items():
        cells = [variant]
        for _, metric, fmt in COLUMNS[1:]:
            value = m.get(metric)
            if metric == "bytes":
                value = value / 1e6
            cells.append("-" if value is None else fmt.format(value))
        cells.append("FAIL" if any(f.startswith(variant + ":") for f in failed) else "ok")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    ref = report["reference"]
    head = (f"drift against the {ref['kind']} on {', '.join(ref['audio'])}: {ref['positions']} positions "
            f"(top {ref['tokens_per_position']} tokens each), {ref['greedy_tokens']} greedy tokens per clip")
    return "\n".join([head, lines[0], "-" * len(lines[0])] + lines[1:])
