"""Write the page policy of an exported frontend as nginx reads it (deploy/nginx/static.conf).

    python deploy/nginx/csp_hashes.py EXPORT_DIR OUTPUT

Dockerfile.frontend runs this after `reflex export`, with the same LETSCHAT_REFLEX_API_URL: the
policy allows the inline scripts of exactly that export (by their sha256) and connections to
rxconfig's api_url. letschat_app/csp.py builds the policy and says why it is what it is.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = "$content_security_policy"


def nginx_set(policy: str) -> str:
    """An nginx `set` of the policy (a double-quoted string: no quote, `$` or backslash)."""
    if any(char in policy for char in '"$\\'):
        raise ValueError(f"cannot quote this policy for nginx: {policy!r}")
    return (
        "# Written by deploy/nginx/csp_hashes.py from this image's export; do not edit.\n"
        f'set {VARIABLE} "{policy}";\n'
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path, help="the exported site (.web/build/client)")
    parser.add_argument("output", type=Path, help="the nginx file to write")
    args = parser.parse_args()
    export_dir, output = args.export_dir.resolve(), args.output.resolve()
    # The app's package and rxconfig.py (which Reflex reads from the working directory) sit
    # beside this folder, not on the path of a script.
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from reflex_base.config import get_config

    from letschat_app import csp

    hashes = csp.build_script_hashes(export_dir)
    if not hashes:
        # An export whose pages run no inline script is not one Reflex makes: a wrong folder.
        parser.error(f"no inline scripts in any page under {export_dir}")
    output.write_text(nginx_set(csp.page_policy(hashes, get_config().api_url)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
