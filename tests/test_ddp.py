"""One run on two processes (DDP, gloo on the CPU): the global batch, every test digit read exactly once,
one run directory, the curriculum and the evaluation as in one process."""

import json
import os
import subprocess
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import ROOT, data_root
from stn_fovea.checkpoint import read_checkpoint


def test_a_ddp_run_on_two_cpu_processes_reads_every_test_digit_once(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "STN_FOVEA_DATA": str(data_root()), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "stn_fovea.train", "trainer=ddp", "trainer.accelerator=cpu", "model=what",
        "curriculum.epochs_per_stage=1", "curriculum.stages=[{shift_std_px:0},{shift_std_px:2}]",
        "data.train_size=400", "data.batch_size=100",
        # 201 digits on 2 processes: a padding sampler would read one of them twice
        "data.val_size=201", "data.test_size=201", "data.eval_batch_size=50",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "evaluators.shift_map.digits_per_cell=1", "evaluators.shift_map.max_shift_px=2",
        "evaluators.glimpses.num_images=4", f"paths.log_dir={tmp_path / 'logs'}", f"hydra.run.dir={run}",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run / "train_ddp_process_1.log").is_file()  # rank 1 wrote into the same run directory
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]
    last = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 2 * 400 // 100  # 2 epochs of global batches of 100 (50 per process)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [event.value for event in events.Scalars("curriculum/shift_std_px")] == [0, 2]
    # trainer.test over the two processes = the evaluation of the same checkpoint by one process
    evaluation = json.loads((run / "eval" / "metrics.json").read_text())
    assert evaluation["test_digits"] == 201
    for protocol, accuracy in evaluation["accuracy"].items():
        (logged,) = events.Scalars(f"test/{protocol}/acc")
        assert abs(logged.value - accuracy) < 1e-6, protocol
