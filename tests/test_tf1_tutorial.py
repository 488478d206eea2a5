"""examples/tf1_tutorial.py, TF1's softmax-regression tutorial, runs as written and learns the digits."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "tf1_tutorial.py"


def test_tutorial_reaches_90_percent(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("STATICGRAPH_CACHE_DIR", str(tmp_path / "sg-cache"))
    tensorboard = importlib.util.find_spec("tensorboardX") and importlib.util.find_spec("tensorboard")
    args = ["--logdir", str(tmp_path / "logs")] if tensorboard else []
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    match = re.search(r"test accuracy: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout
    assert float(match.group(1)) >= 0.90
    source = SCRIPT.read_text()
    for idiom in ["import staticgraph as tf", "tf.InteractiveSession()", "tf.global_variables_initializer().run()",
                  "accuracy.eval(feed_dict=", "tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), axis=1))",
                  "tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)"]:
        assert idiom in source
    if tensorboard:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        ea = EventAccumulator(str(tmp_path / "logs"), size_guidance={"scalars": 0})
        ea.Reload()
        losses = [e.value for e in ea.Scalars("cross_entropy")]
        assert len(losses) == 200 and losses[0] > 2.0 and losses[-1] < 0.5 * losses[0]
        assert any(node.name.startswith("gradients/") for node in ea.Graph().node)
