import subprocess
import sys
import time

import pytest
import yaml

from braincl import config
from braincl.cli import main
from tests.conftest import tiny_overrides


def test_layering_and_overrides():
    cfg = config.load(None, ["method.name=er", "memory.budget=1MB", "train.epochs=7"])
    assert cfg["model"]["backbone"] == "resnet18_slim"          # from defaults/datasets/mnist5k.yaml
    assert cfg["method"]["params"]["selection"] == "random"    # from defaults/methods/er.yaml
    assert cfg["train"]["epochs"] == 7                          # from --set
    assert cfg["scenario"]["class_order_seed"] == 1993


@pytest.mark.parametrize("override,message", [
    ("train.epochz=3", "epochz"),                    # unknown key lists valid keys
    ("method.name=nosuch", "valid: "),                # unknown method lists the registered ones
    ("dataset.name=cifar1000", "valid: "),
    ("train.epochs=-1", "minimum"),
    ("train.optimizer.name=lion", "not one of"),
    ("memory.budget=12 parsecs", "memory.budget"),
    ("method.params.temperature=2", "unknown parameter"),
])
def test_validation_messages(override, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(None, ["method.name=er", "memory.budget=100KB", override])


def test_unknown_key_names_valid_ones():
    with pytest.raises(config.ConfigError) as err:
        config.load(None, ["train.epochz=3"])
    assert "valid keys here" in str(err.value) and "epochs" in str(err.value)


def test_replay_needs_a_budget():
    with pytest.raises(config.ConfigError, match="memory.budget is required"):
        config.load(None, ["method.name=er"])


def test_malformed_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: {name: er\n")
    with pytest.raises(config.ConfigError, match="not valid YAML"):
        config.load(bad)
    with pytest.raises(config.ConfigError, match="not found"):
        config.load(tmp_path / "missing.yaml")


def test_cli_help_is_fast_and_light():
    code = ("import sys, runpy; sys.argv=['braincl','--help']\n"
            "try:\n    runpy.run_module('braincl.cli', run_name='__main__')\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules and 'compressai' not in sys.modules, 'heavy import'")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "braincl" in out.stdout and time.perf_counter() - t0 < 5


def test_cli_validate_does_not_import_compressai(tmp_path):
    cfgfile = tmp_path / "c.yaml"
    cfgfile.write_text(yaml.safe_dump({"method": {"name": "er"}, "memory": {"budget": "100KB"}}))
    code = (f"import sys; from braincl.cli import main; rc = main(['validate', {str(cfgfile)!r}]);"
            "assert rc == 0; assert 'compressai' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_cli_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "finetune" in out and "mnist5k" in out and "resnet18" in out


def test_cli_rejects_bad_config_before_work(tmp_path, capsys):
    rc = main(["run", "none.yaml", "--out", str(tmp_path / "o")])
    assert rc == 2 and "not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_impossible_budget_leaves_no_result(tmp_path, capsys):
    cfgfile = tmp_path / "c.yaml"
    cfgfile.write_text("{}")
    out = tmp_path / "o"
    rc = main(["run", str(cfgfile), "--out", str(out), *sum((["--set", o] for o in tiny_overrides("er", "1KB")), [])])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot hold one exemplar" in err
    assert not (out / "metrics.json").exists()
