"""Write results/REPORT.md: every claim in configs/claims.yaml judged from the stored metrics (no training).

    python experiments/report.py                       # results/ -> results/REPORT.md
    python experiments/report.py --results my_results  # your own results folders, same layout
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

from bnrepro.report import VERDICTS, ClaimsError, build

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=ROOT / "results", help="folder holding results/<name>/")
    p.add_argument("--claims", type=Path, default=ROOT / "configs" / "claims.yaml")
    p.add_argument("--out", type=Path, help="default: <results>/REPORT.md")
    args = p.parse_args()
    try:
        markdown, outcomes = build(args.results, args.claims)
    except (ClaimsError, FileNotFoundError) as e:
        print(f"report: {e}", file=sys.stderr)
        sys.exit(2)
    out = args.out or args.results / "REPORT.md"
    out.write_text(markdown)
    counted = [o for o in outcomes if o.claim.counts]
    n = Counter(o.verdict for o in counted)
    print(f"wrote {out}: {len(outcomes)} rows; of the {len(counted)} that can reproduce: "
          + ", ".join(f"{n[v]} {v}" for v in VERDICTS))


if __name__ == "__main__":
    main()
