"""Build the tiny random Gemma 4 (tests/servers/tiny_gemma.py) into a folder and serve it with ``transformers serve``.

One process for both, so torch and transformers are imported once (~10 s on 2 cores). Offline, CPU, 127.0.0.1:

    python tests/servers/tiny_gemma_serve.py MODEL_DIR PORT
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def main() -> int:
    folder, port = Path(sys.argv[1]), sys.argv[2]
    if not (folder / "config.json").exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from tiny_gemma import save_tiny

        save_tiny(folder)
    from transformers.cli.transformers import main as cli

    sys.argv = ["transformers", "serve", str(folder), "--host", "127.0.0.1", "--port", port, "--device", "cpu",
                "--default-seed", "0", "--log-level", "warning"]
    return cli() or 0


if __name__ == "__main__":
    sys.exit(main())
