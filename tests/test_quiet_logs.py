"""A default run prints no warning that its user cannot act on (issue 20): a tiny default run, as the
command line runs it, and every line it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import CACHE, ROOT, data_root

# tiny sizes: one curriculum stage of one epoch (a max_epochs below the curriculum would be warned of,
# rightly), a logging interval within the two training batches (Lightning warns of a longer one)
TINY_DEFAULT_RUN = (
    "data.train_size=200", "data.val_size=100", "data.test_size=100",
    "curriculum.stages=[{shift_std_px:0}]", "curriculum.epochs_per_stage=1", "trainer.log_every_n_steps=1",
    "evaluators.shift_map.digits_per_cell=1", "evaluators.shift_map.max_shift_px=2",
)  # fmt: skip
NOTICE = re.compile(r"warn|deprecat|tip:|FLOPs: 0\b", re.IGNORECASE)


def test_a_tiny_default_run_prints_no_warning(tmp_path):
    env = {**os.environ, "STN_FOVEA_DATA": str(data_root()), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "stn_fovea.train", *TINY_DEFAULT_RUN, f"hydra.run.dir={tmp_path}",
         f"paths.cache_dir={CACHE}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    printed = (result.stdout + result.stderr).splitlines()
    assert any("stn_fovea run finished" in line for line in printed)
    assert [line for line in printed if NOTICE.search(line)] == []
