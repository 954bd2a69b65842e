"""Model files (safetensors weights + JSON spec, never pickle) and the verification network."""

import json
import os

import pytest
import torch
from torch import nn

from nnassure.errors import InputFileError
from nnassure.models import MLP, MLPSpec, load_model, save_model


def _model(depth=2, width=8, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return MLP(MLPSpec(depth=depth, width=width, dropout=dropout)).eval()


@pytest.fixture
def saved(tmp_path):
    model = _model(depth=3, width=8, dropout=0.1)
    stem = tmp_path / "model"
    save_model(model, stem, metadata={"cost_fn": 10.0, "dataset": "b"})
    return model, stem


def test_round_trip_gives_identical_outputs(saved):
    model, stem = saved
    loaded = load_model(stem)
    assert loaded.model.spec == model.spec
    assert loaded.metadata == {"cost_fn": 10.0, "dataset": "b"}
    assert not loaded.model.training
    x = torch.rand(64, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor)


def test_only_safetensors_and_json_are_written(saved, tmp_path):
    _, stem = saved
    assert sorted(os.listdir(tmp_path)) == ["model.json", "model.safetensors"]
    document = json.loads((tmp_path / "model.json").read_text())
    assert document["format"] == "nnassure.mlp/1"
    assert document["spec"] == {"depth": 3, "width": 8, "dropout": 0.1, "input_dim": 2, "activation": "relu",
                                "outputs": 1}
    # The weights file is safetensors (8-byte little-endian header length, then a JSON header), not a pickle.
    raw = (tmp_path / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert "net.0.weight" in header


def test_save_overwrites_atomically(saved, tmp_path):
    _, stem = saved
    other = _model(depth=3, width=8, dropout=0.1, seed=5)
    save_model(other, stem)
    assert sorted(os.listdir(tmp_path)) == ["model.json", "model.safetensors"]
    x = torch.rand(8, 2)
    with torch.no_grad():
        assert torch.equal(load_model(stem).model(x), other(x))


@pytest.mark.parametrize("content", [b"garbage bytes" * 10, b"", bytes(range(256))])
def test_corrupt_safetensors(saved, content):
    _, stem = saved
    stem.with_suffix(".safetensors").write_bytes(content)
    with pytest.raises(InputFileError, match="corrupt safetensors"):
        load_model(stem)


def test_truncated_safetensors(saved):
    _, stem = saved
    path = stem.with_suffix(".safetensors")
    path.write_bytes(path.read_bytes()[:-16])
    with pytest.raises(InputFileError):
        load_model(stem)


def _edit_spec(stem, **changes):
    path = stem.with_suffix(".json")
    document = json.loads(path.read_text())
    document["spec"].update(changes)
    path.write_text(json.dumps(document))


def test_spec_with_depth_9_is_rejected(saved):
    _, stem = saved
    _edit_spec(stem, depth=9)
    with pytest.raises(InputFileError, match="not a valid model spec"):
        load_model(stem)


@pytest.mark.parametrize("changes", [{"width": 16}, {"depth": 2}, {"input_dim": 3}])
def test_spec_weight_mismatch(saved, changes):
    _, stem = saved
    _edit_spec(stem, **changes)
    with pytest.raises(InputFileError, match="do not match the architecture"):
        load_model(stem)


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"format": "other/1", "spec": {"depth": 2, "width": 8}}',
        '{"format": "nnassure.mlp/1"}',
        '{"format": "nnassure.mlp/1", "spec": {"depth": 2, "width": 8, "colour": 1}}',
        '{"format": "nnassure.mlp/1", "spec": [2, 8]}',
    ],
)
def test_invalid_spec_documents(saved, text):
    _, stem = saved
    stem.with_suffix(".json").write_text(text)
    with pytest.raises(InputFileError, match="not a valid model spec"):
        load_model(stem)


@pytest.mark.parametrize("text", ["[1, 2]", "null", '"nnassure.mlp/1"'])
def test_spec_that_is_not_a_json_object(saved, text):
    _, stem = saved
    stem.with_suffix(".json").write_text(text)
    with pytest.raises(InputFileError):
        load_model(stem)


def test_spec_with_float_depth(saved):
    _, stem = saved
    _edit_spec(stem, depth=2.0)
    with pytest.raises(InputFileError):
        load_model(stem)


@pytest.mark.parametrize("suffix", [".safetensors", ".json"])
def test_missing_file(saved, suffix):
    _, stem = saved
    stem.with_suffix(suffix).unlink()
    with pytest.raises(InputFileError, match="not found") as info:
        load_model(stem)
    assert str(stem.with_suffix(suffix)) in str(info.value)


def test_missing_model_entirely(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_model(tmp_path / "nothing")


@pytest.mark.parametrize("spec", [dict(depth=0, width=8), dict(depth=9, width=8), dict(depth=2, width=0),
                                  dict(depth=2, width=8, dropout=1.0), dict(depth=2, width=8, input_dim=0),
                                  dict(depth=2, width=8, outputs=0), dict(depth=2, width=8, activation="gelu")])
def test_mlp_spec_validation(spec):
    with pytest.raises(ValueError):
        MLPSpec(**spec)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_architecture(depth):
    model = _model(depth=depth, width=5, dropout=0.0)
    linears = [m for m in model.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 5)] + [(5, 5)] * (depth - 1) + [(5, 1)]
    assert sum(isinstance(m, nn.ReLU) for m in model.net) == depth
    assert not any(isinstance(m, nn.Dropout) for m in model.net)
    assert model(torch.rand(3, 2)).shape == (3, 1)


def test_verification_network_drops_dropout():
    model = _model(depth=3, width=16, dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) for m in model.net) == 3
    network = model.verification_network()
    assert isinstance(network, nn.Sequential)
    assert not any(isinstance(m, nn.Dropout) for m in network)
    assert [type(m) for m in network] == [nn.Linear, nn.ReLU] * 3 + [nn.Linear]
    assert not network.training
    x = torch.rand(128, 2, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        assert torch.equal(network(x), model(x))
    # In training mode Dropout changes the model's outputs, never the verification network's.
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), network(x))


def test_spec_with_unknown_activation_is_rejected(saved):
    _, stem = saved
    _edit_spec(stem, activation="swish")
    with pytest.raises(InputFileError, match="not a valid model spec.*activation"):
        load_model(stem)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "arctan"])
def test_multiclass_models_of_every_activation_round_trip(tmp_path, activation):
    model = MLP(MLPSpec(depth=2, width=5, input_dim=4, activation=activation, outputs=3))
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m").model
    x = torch.rand(6, 4)
    assert loaded.spec == model.spec
    assert torch.equal(loaded(x), model(x))
    assert loaded(x).shape == (6, 3)
