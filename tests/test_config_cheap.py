"""Composing is cheap: no torch behind ``nnassure.config``, and the torch-free copies it uses
agree with the modules the stages import."""

import subprocess
import sys

from nnassure.config import compose


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_and_compose_do_not_import_torch():
    result = _run("import sys; from nnassure.config import compose; compose(['experiment=quick']); "
                  "assert 'torch' not in sys.modules, 'torch imported'")
    assert result.returncode == 0, result.stderr


def test_compose_pipeline_does_not_import_torch():
    result = _run("import sys; from nnassure.config import compose_pipeline; compose_pipeline(['experiment=smoke']); "
                  "assert 'torch' not in sys.modules, 'torch imported'")
    assert result.returncode == 0, result.stderr


def test_milp_takes_its_backends_from_the_torch_free_module():
    from nnassure.ensemble import backends, milp

    assert milp.BACKENDS is backends.BACKENDS


def test_compose_after_the_ensemble_package_is_imported():
    # The stages import nnassure.ensemble before composing; the config then uses the real modules.
    import nnassure.ensemble.benchmarks  # noqa: F401

    cfg = compose(["experiment=smoke", "ensemble.backends=[highs]"])
    assert list(cfg.ensemble.rows) == [25, 26]


def test_a_repeated_compose_sees_an_edited_conf_file(tmp_path, monkeypatch):
    import shutil

    from nnassure import config

    conf = tmp_path / "conf"
    shutil.copytree(config.conf_dir(), conf)
    monkeypatch.setattr(config, "conf_dir", lambda: conf)
    assert compose(["experiment=smoke"]).train.seed == 0
    train = conf / "train" / "default.yaml"
    train.write_text(train.read_text().replace("seed: 0", "seed: 12345"))
    assert compose(["experiment=smoke"]).train.seed == 12345
