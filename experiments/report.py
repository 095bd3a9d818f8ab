"""Write the report: every claim in configs/claims.yaml judged from the stored metrics (no training).

    python experiments/report.py                       # results/ -> results/REPORT.md, results/report/*.md,
                                                       #             results/REPORT.html (one page, figures inline)
    python experiments/report.py --results my_results  # your own results folders, same layout
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the forest plots go to files, with or without a display

from bnrepro import EXIT_REFUSED, BnreproError  # noqa: E402
from bnrepro.io_utils import unwritable_reason  # noqa: E402
from bnrepro.report import VERDICTS, ClaimsError, build  # noqa: E402
from bnrepro.report.html import to_html  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=ROOT / "results", help="folder holding results/<name>/")
    p.add_argument("--claims", type=Path, default=ROOT / "configs" / "claims.yaml")
    args = p.parse_args()
    for folder in (args.results, args.results / "report"):  # before anything is judged or written
        if (reason := unwritable_reason(folder)) is not None:
            print(f"report: cannot write {folder}: {reason}", file=sys.stderr)
            sys.exit(EXIT_REFUSED)
    try:
        pages, outcomes = build(args.results, args.claims)
    except (ClaimsError, FileNotFoundError, BnreproError) as e:
        print(f"report: {e}", file=sys.stderr)
        sys.exit(EXIT_REFUSED)
    folder = args.results / "report"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in set(folder.glob("*.md")) - {args.results / name for name in pages}:
        stale.unlink()  # a figure removed from the claims file leaves no page behind
    for stale in folder.glob("forest_*.png"):
        if f"report/{stale.name}" not in pages["REPORT.md"]:
            stale.unlink()  # nor does a question
    for name, text in pages.items():
        (args.results / name).write_text(text)
    (args.results / "REPORT.html").write_text(to_html(pages, args.results))
    counted = [o for o in outcomes if o.claim.counts and not o.claim.extension]
    n = Counter(o.verdict for o in counted)
    print(f"wrote {args.results / 'REPORT.md'}, {len(pages) - 1} figure pages in {folder} and REPORT.html: "
          f"{len(outcomes)} rows; of the {len(counted)} that can reproduce: "
          + ", ".join(f"{n[v]} {v}" for v in VERDICTS))


if __name__ == "__main__":
    main()
