"""The dashboard server's own settings (.streamlit/config.toml): what `streamlit run` reads
when `telcopulse up`, the browser tests or the container start it in the project's root."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import PROJECT_ROOT

READ_OPTIONS = """
import json
from streamlit import config
config.get_config_options(force_reparse=True)
names = ("runner.postScriptGC", "server.fileWatcherType")
print(json.dumps({name: config.get_option(name) for name in names}))
"""


def test_a_server_started_in_the_project_root_skips_the_per_run_gc_and_file_polling():
    """Both cost the dashboard most of its CPU under 20 viewers (make viewers, py-spy)."""
    shown = subprocess.run(
        [sys.executable, "-c", READ_OPTIONS],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(shown.stdout) == {
        "runner.postScriptGC": False,
        "server.fileWatcherType": "none",
    }
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "WORKDIR /app" in dockerfile
    assert "COPY .streamlit/ .streamlit/" in dockerfile
