"""nnassure.config.compose: the experiments compose, and every bad value fails naming its key."""

import copy

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ReadonlyConfigError

from nnassure.config import Config, compose, compose_many, compose_pipeline, validate
from nnassure.errors import ConfigError


def test_default_composes():
    cfg = compose()
    assert cfg.grid.name == "quick"  # experiment=quick is the default
    assert cfg.dataset.name == "a"
    assert list(cfg.certify.norms) == ["linf", "l2"]
    assert cfg.certify.method in cfg.certify.methods
    assert OmegaConf.is_readonly(cfg)
    with pytest.raises(ReadonlyConfigError):
        cfg.train.lr = 1.0


@pytest.mark.parametrize(
    ("experiment", "grid_name", "n_samples", "methods"),
    [
        ("smoke", "smoke", 300, ["crown"]),
        ("quick", "quick", 1000, ["crown"]),
        ("paper", "paper", 1000, ["ibp", "crown", "alpha-crown"]),
    ],
)
def test_experiments_compose(experiment, grid_name, n_samples, methods):
    cfg = compose([f"experiment={experiment}"])
    assert cfg.grid.name == grid_name
    assert cfg.dataset.n_samples == n_samples
    assert list(cfg.certify.methods) == methods


def test_dataset_group_and_overrides():
    cfg = compose(["dataset=c", "train.cost_fn=10", "certify.eps=[0.5]", "report.fig2_eps=0.5",
                   "report.fig3_eps=0.5"])
    assert (cfg.dataset.name, cfg.dataset.n_samples, cfg.dataset.seed) == ("c", 10000, 13)
    assert cfg.dataset.minority_fraction == pytest.approx(0.0909)
    assert cfg.train.cost_fn == 10.0
    assert list(cfg.certify.eps) == [0.5]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("certify.eps=[-0.1]", "certify.eps"),
        ("certify.norms=[l3]", "certify.norms"),
        ("train.cost_fn=0", "train.cost_fn"),
        ("train.cost_fn=-1", "train.cost_fn"),
        ("train.cost_fn=nan", "train.cost_fn"),
        ("model.depth=5", "model.depth"),
        ("model.depth=0", "model.depth"),
        ("dataset=d", "dataset"),
        ("grid.datasets=[x]", "grid.datasets"),
        ("foo=1", "foo"),
        ("train.lr=abc", "train.lr"),
        ("certify.method=ibp", "certify.method"),  # not in certify.methods
        ("proven.models=[digits_swish_2x20]", "proven.models[0]"),
        ("proven.models=[mnist_relu_2x20]", "proven.models[0]"),
        ("proven.models=[digits_relu_9x20]", "proven.models[0]"),
        ("proven.gaussian_models=[digits_relu_7x7]", "proven.gaussian_models[0]"),
        ("proven.gammas=[1.0]", "proven.gammas[0]"),
        ("proven.gammas=[0]", "proven.gammas[0]"),
        ("proven.table2_samples=1000", "proven.table2_samples"),
        ("proven.eps_max=0.00001", "proven.eps_max"),
        ("proven.guess_factor=1", "proven.guess_factor"),
        ("proven.model=digits", "proven.model"),
        ("images.split=[0.5,0.5,0.5]", "images.split"),
        ("images.sign_classes=[stop,yield]", "images.sign_classes[1]"),
        ("images.signs_size=4", "images.signs_size"),
    ],
)
def test_bad_values_raise_config_error_naming_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        compose([override])
    message = str(info.value)
    assert key in message
    assert "\n" not in message  # one-line message for the user


# --- every key: what it refuses, said in one line naming the key --------------------------------
# These check the schema on the composed defaults with one value changed (no Hydra compose per
# case: the schema alone decides, and composing costs a few tenths of a second each).

PROVEN_MODELS_HINT = "expected one of proven.models ["
PER_KEY = [
    ("grid.name", ["a"], "invalid config value grid.name=['a']: expected a string"),
    ("grid.datasets", [], "invalid config value grid.datasets=[]: expected a non-empty list of a, b, c"),
    ("grid.datasets", ["x"], "invalid config value grid.datasets[0]='x': expected one of a, b, c"),
    ("grid.costs", [], "invalid config value grid.costs=[]: expected a non-empty list of costs > 0"),
    ("grid.costs", [1.0, 0], "invalid config value grid.costs[1]=0.0: expected a finite number > 0"),
    ("dataset.name", "z", "invalid config value dataset.name='z': expected one of a, b, c"),
    ("dataset.n_samples", 19, "invalid config value dataset.n_samples=19: expected an integer >= 20"),
    ("dataset.minority_fraction", 0.6,
     "invalid config value dataset.minority_fraction=0.6: expected a number in (0, 0.5]"),
    ("dataset.margin", -1, "invalid config value dataset.margin=-1.0: expected a finite number >= 0"),
    ("dataset.val_fraction", 1, "invalid config value dataset.val_fraction=1.0: expected a number in (0, 1)"),
    ("dataset.seed", "x", "invalid config value dataset.seed='x': expected an integer"),
    ("model.depth", 0, "invalid config value model.depth=0: expected an integer in 1..4"),
    ("model.depth", 2.5, "invalid config value model.depth=2.5: expected an integer"),
    ("model.depth", True, "invalid config value model.depth=True: expected an integer"),
    ("model.width", 0, "invalid config value model.width=0: expected an integer >= 1"),
    ("model.dropout", 1, "invalid config value model.dropout=1.0: expected a number in [0, 1)"),
    ("train.cost_fn", float("inf"), "invalid config value train.cost_fn=inf: expected a finite number > 0"),
    ("train.cost_fp", 0, "invalid config value train.cost_fp=0.0: expected a finite number > 0"),
    ("train.lr", 0, "invalid config value train.lr=0.0: expected a finite number > 0"),
    ("train.lr", "abc", "invalid config value train.lr='abc': expected a number"),
    ("train.weight_decay", -0.1, "invalid config value train.weight_decay=-0.1: expected a finite number >= 0"),
    ("train.batch_size", 0, "invalid config value train.batch_size=0: expected an integer >= 1"),
    ("train.max_epochs", 0, "invalid config value train.max_epochs=0: expected an integer >= 1"),
    ("train.patience", 0, "invalid config value train.patience=0: expected an integer >= 1"),
    ("train.seed", 1.5, "invalid config value train.seed=1.5: expected an integer"),
    ("train.hparams_file", [1], "invalid config value train.hparams_file=[1]: expected a string"),
    ("search.n_trials", 0, "invalid config value search.n_trials=0: expected an integer >= 1"),
    ("search.max_epochs", 0, "invalid config value search.max_epochs=0: expected an integer >= 1"),
    ("search.patience", 0, "invalid config value search.patience=0: expected an integer >= 1"),
    ("search.depths", [5], "invalid config value search.depths[0]=5: expected an integer in 1..4"),
    ("search.depths", [], "invalid config value search.depths=[]: expected a non-empty list"),
    ("search.widths", [0], "invalid config value search.widths[0]=0: expected an integer >= 1"),
    ("search.lrs", [0], "invalid config value search.lrs[0]=0.0: expected a finite number > 0"),
    ("search.lrs", [], "invalid config value search.lrs=[]: expected a non-empty list"),
    ("search.weight_decays", [-1], "invalid config value search.weight_decays[0]=-1.0: expected a finite number >= 0"),
    ("search.dropouts", [1], "invalid config value search.dropouts[0]=1.0: expected a number in [0, 1)"),
    ("search.seed", "x", "invalid config value search.seed='x': expected an integer"),
    ("certify.method", "ibp", "invalid config value certify.method='ibp': expected one of certify.methods ['crown']"),
    ("certify.method", "x", "invalid config value certify.method='x': expected one of ibp, crown, alpha-crown"),
    ("certify.methods", ["foo"],
     "invalid config value certify.methods[0]='foo': expected one of ibp, crown, alpha-crown"),
    ("certify.methods", [], "invalid config value certify.methods=[]: expected a non-empty list"),
    ("certify.norms", [], "invalid config value certify.norms=[]: expected a non-empty list of linf, l2"),
    ("certify.norms", ["l3"], "invalid config value certify.norms[0]='l3': expected one of linf, l2"),
    ("certify.eps", [0.01, -0.1], "invalid config value certify.eps[1]=-0.1: expected a finite number > 0"),
    ("certify.eps", [], "invalid config value certify.eps=[]: expected a non-empty list of radii > 0"),
    ("certify.eps", "abc", "invalid config value certify.eps='abc': expected a list"),
    ("certify.clip_to_domain", 1, "invalid config value certify.clip_to_domain=1: expected true or false"),
    ("certify.batch_size", 0, "invalid config value certify.batch_size=0: expected an integer >= 1"),
    ("certify.alpha_batch_size", 0, "invalid config value certify.alpha_batch_size=0: expected an integer >= 1"),
    ("certify.alpha_iterations", 0, "invalid config value certify.alpha_iterations=0: expected an integer >= 1"),
    ("certify.radius", "often", "invalid config value certify.radius='often': expected"),
    ("certify.radius_max", 0, "invalid config value certify.radius_max=0.0: expected a finite number > 0"),
    ("certify.radius_steps", 0, "invalid config value certify.radius_steps=0: expected an integer >= 1"),
    ("images.digits_size", 1, "invalid config value images.digits_size=1: expected an integer >= 2"),
    ("images.signs_size", 5, "invalid config value images.signs_size=5: expected an integer >= 6"),
    ("images.signs_per_class", 4, "invalid config value images.signs_per_class=4: expected an integer >= 5"),
    ("images.sign_classes", ["stop"], "invalid config value images.sign_classes=['stop']: expected at least 2 of "
     "give_way, priority_road, stop, no_entry, speed_limit, ahead_only"),
    ("images.split", [0.5, 0.5], "invalid config value images.split=[0.5, 0.5]: expected three positive fractions "
     "(train, val, test) summing to 1"),
    ("images.seed", None, "invalid config value images.seed=None: expected an integer"),
    ("images.lr", 0, "invalid config value images.lr=0.0: expected a finite number > 0"),
    ("images.weight_decay", -1, "invalid config value images.weight_decay=-1.0: expected a finite number >= 0"),
    ("images.batch_size", 0, "invalid config value images.batch_size=0: expected an integer >= 1"),
    ("images.max_epochs", 0, "invalid config value images.max_epochs=0: expected an integer >= 1"),
    ("images.patience", 0, "invalid config value images.patience=0: expected an integer >= 1"),
    ("proven.models", [], "invalid config value proven.models=[]: expected a non-empty list of model names"),
    ("proven.models", ["digits_relu_0x20"], "invalid config value proven.models[0]='digits_relu_0x20': expected "
     "<dataset>_<activation>_<depth>x<width>"),
    ("proven.table4_models", ["digits_relu_9x9"], "invalid config value proven.table4_models[0]='digits_relu_9x9': "
     + PROVEN_MODELS_HINT),
    ("proven.gaussian_models", ["digits_relu_7x7"],
     "invalid config value proven.gaussian_models[0]='digits_relu_7x7': " + PROVEN_MODELS_HINT),
    ("proven.model", "digits", "invalid config value proven.model='digits': expected <dataset>_<activation>_"),
    ("proven.gammas", [], "invalid config value proven.gammas=[]: expected a non-empty list of confidences in (0, 1)"),
    ("proven.gammas", [0.5, 1], "invalid config value proven.gammas[1]=1.0: expected a confidence in (0, 1)"),
    ("proven.samples", 0, "invalid config value proven.samples=0: expected an integer >= 1"),
    ("proven.table4_samples", 0, "invalid config value proven.table4_samples=0: expected an integer >= 1"),
    ("proven.table2_samples", 0, "invalid config value proven.table2_samples=0: expected an integer >= 1"),
    ("proven.table4_trials", 0, "invalid config value proven.table4_trials=0: expected an integer >= 1"),
    ("proven.table4_sizes", [0], "invalid config value proven.table4_sizes[0]=0: expected an integer >= 1"),
    ("proven.eps_min", 0, "invalid config value proven.eps_min=0.0: expected a finite number > 0"),
    ("proven.eps_max", float("inf"), "invalid config value proven.eps_max=inf: expected a finite number > 0"),
    ("proven.bisection_tolerance", 0,
     "invalid config value proven.bisection_tolerance=0.0: expected a finite number > 0"),
    ("proven.guess_factor", 1, "invalid config value proven.guess_factor=1.0: expected a number > 1"),
    ("proven.batch_size", 0, "invalid config value proven.batch_size=0: expected an integer >= 1"),
    ("proven.sigma_ratio", 0, "invalid config value proven.sigma_ratio=0.0: expected a finite number > 0"),
    ("proven.correlation_length", 0,
     "invalid config value proven.correlation_length=0.0: expected a finite number > 0"),
    ("proven.channel_correlation", 2,
     "invalid config value proven.channel_correlation=2.0: expected a number in [0, 1]"),
    ("proven.seed", "x", "invalid config value proven.seed='x': expected an integer"),
    ("ensemble.benchmarks", [], "ensemble.benchmarks: expected a non-empty list of benchmark rows"),
    ("ensemble.rows", [0], "invalid config value ensemble.rows[0]=0: expected a benchmark id of ensemble.benchmarks "
     "(1..38)"),
    ("ensemble.row", 0, "invalid config value ensemble.row=0: expected a benchmark id of ensemble.benchmarks"),
    ("ensemble.instance", "x", "invalid config value ensemble.instance='x': expected one of mnist_0_1-7x7, "),
    ("ensemble.classifier", 0, "invalid config value ensemble.classifier=0: expected an integer >= 1"),
    ("ensemble.backends", ["x"], "invalid config value ensemble.backends[0]='x': expected one of highs, gurobi"),
    ("ensemble.backends", [], "invalid config value ensemble.backends=[]: expected a non-empty list of MILP backends"),
    ("ensemble.table_backend", "x", "invalid config value ensemble.table_backend='x': expected one of highs, gurobi"),
    ("ensemble.smt", "x", "invalid config value ensemble.smt='x': expected true or false"),
    ("ensemble.time_limit", 0, "invalid config value ensemble.time_limit=0.0: expected a finite number > 0"),
    ("ensemble.smt_time_limit", 0, "invalid config value ensemble.smt_time_limit=0.0: expected a finite number > 0"),
    ("ensemble.bounds", "x", "invalid config value ensemble.bounds='x': expected one of interval, lirpa"),
    ("ensemble.margin", -1, "invalid config value ensemble.margin=-1.0: expected a finite number >= 0"),
    ("ensemble.heuristic", "x", "invalid config value ensemble.heuristic='x': expected true or false"),
    ("ensemble.heuristic_starts", 0, "invalid config value ensemble.heuristic_starts=0: expected an integer >= 1"),
    ("ensemble.heuristic_steps", 0, "invalid config value ensemble.heuristic_steps=0: expected an integer >= 1"),
    ("ensemble.precheck", "x", "invalid config value ensemble.precheck='x': expected true or false"),
    ("ensemble.depth", 5, "invalid config value ensemble.depth=5: expected an integer in 1..4"),
    ("ensemble.width", 0, "invalid config value ensemble.width=0: expected an integer >= 1"),
    ("ensemble.conv_filters", 0, "invalid config value ensemble.conv_filters=0: expected an integer >= 1"),
    ("ensemble.conv_kernel", 0, "invalid config value ensemble.conv_kernel=0: expected an integer >= 1"),
    ("ensemble.pool", 0, "invalid config value ensemble.pool=0: expected an integer >= 1"),
    ("ensemble.conv_hidden", 0, "invalid config value ensemble.conv_hidden=0: expected an integer >= 1"),
    ("ensemble.max_epochs", 0, "invalid config value ensemble.max_epochs=0: expected an integer >= 1"),
    ("ensemble.signs_per_class", 0, "invalid config value ensemble.signs_per_class=0: expected an integer >= 1"),
    ("ensemble.min_accuracy_digits", 1.5, "invalid config value ensemble.min_accuracy_digits=1.5: expected an "
     "accuracy in [0, 1]"),
    ("ensemble.min_accuracy_signs", -0.1, "invalid config value ensemble.min_accuracy_signs=-0.1: expected an "
     "accuracy in [0, 1]"),
    ("ensemble.training_attempts", 0, "invalid config value ensemble.training_attempts=0: expected an integer >= 1"),
    ("ensemble.seed", "x", "invalid config value ensemble.seed='x': expected an integer"),
    ("video.motions", ['left', 'right', 'up'],
     "invalid config value video.motions=['left', 'right', 'up']: "
     'expected at least 4 distinct motions of left, right, up, down, zoom_in, zoom_out'),
    ("video.clips_per_class", 4,
     'invalid config value video.clips_per_class=4: '
     'expected an integer >= 5'),
    ("video.frames", 2,
     'invalid config value video.frames=2: '
     'expected an integer >= 3'),
    ("video.size", 15,
     'invalid config value video.size=15: '
     'expected an integer >= 16'),
    ("video.speed", [2.0, 1.0],
     'invalid config value video.speed=[2.0, 1.0]: '
     'expected [min, max] pixels per frame with 0 < min <= max'),
    ("video.zoom", [0.0, 0.1],
     'invalid config value video.zoom=[0.0, 0.1]: '
     'expected [min, max] relative scale change per frame with 0 < min <= max'),
    ("video.noise", -0.1,
     'invalid config value video.noise=-0.1: '
     'expected a finite number >= 0'),
    ("video.split", [0.5, 0.5, 0.5],
     'invalid config value video.split=[0.5, 0.5, 0.5]: '
     'expected three positive fractions (train, val, test) summing to 1'),
    ("video.seed", 'x',
     "invalid config value video.seed='x': "
     'expected an integer'),
    ("video.farneback", 'x',
     "invalid config value video.farneback='x': "
     'expected a mapping'),
    ("video.flow_pool", 0,
     'invalid config value video.flow_pool=0: '
     'expected an integer >= 1'),
    ("video.conv_channels", 0,
     'invalid config value video.conv_channels=0: '
     'expected an integer >= 1'),
    ("video.features", 0,
     'invalid config value video.features=0: '
     'expected an integer >= 1'),
    ("video.hidden", 0,
     'invalid config value video.hidden=0: '
     'expected an integer >= 1'),
    ("video.lr", 0,
     'invalid config value video.lr=0.0: '
     'expected a finite number > 0'),
    ("video.weight_decay", -1,
     'invalid config value video.weight_decay=-1.0: '
     'expected a finite number >= 0'),
    ("video.batch_size", 0,
     'invalid config value video.batch_size=0: '
     'expected an integer >= 1'),
    ("video.max_epochs", 0,
     'invalid config value video.max_epochs=0: '
     'expected an integer >= 1'),
    ("video.patience", 0,
     'invalid config value video.patience=0: '
     'expected an integer >= 1'),
    ("video.clips", 0,
     'invalid config value video.clips=0: '
     'expected an integer >= 1'),
    ("video.clip", -1,
     'invalid config value video.clip=-1: '
     'expected an integer >= 0'),
    ("video.norm", 'l3',
     "invalid config value video.norm='l3': "
     'expected one of l1, l2, linf'),
    ("video.upper_iterations", 0,
     'invalid config value video.upper_iterations=0: '
     'expected an integer >= 1'),
    ("video.upper_gradient", 'exact',
     "invalid config value video.upper_gradient='exact': "
     'expected one of autograd, finite-difference'),
    ("video.upper_step", 0,
     'invalid config value video.upper_step=0.0: '
     'expected a finite number > 0'),
    ("video.astar_iterations", 0,
     'invalid config value video.astar_iterations=0: '
     'expected an integer >= 1'),
    ("video.astar_seconds", 0,
     'invalid config value video.astar_seconds=0.0: '
     'expected a finite number > 0'),
    ("video.astar_batch", 0,
     'invalid config value video.astar_batch=0: '
     'expected an integer >= 1'),
    ("video.astar_dims_per_flow", 0,
     'invalid config value video.astar_dims_per_flow=0: '
     'expected an integer >= 1'),
    ("video.tau_fraction", 1.5,
     'invalid config value video.tau_fraction=1.5: '
     'expected a number in (0, 1]'),
    ("video.lirpa_method", 'alpha-crown',
     "invalid config value video.lirpa_method='alpha-crown': "
     'expected one of ibp, crown'),
    ("video.lirpa_norms", [],
     'invalid config value video.lirpa_norms=[]: '
     'expected a non-empty list of norms'),
    ("video.lirpa_tolerance", 0,
     'invalid config value video.lirpa_tolerance=0.0: '
     'expected a finite number > 0'),
    ("video.manipulated_flows", [8],
     'invalid config value video.manipulated_flows[0]=8: '
     'expected at most video.frames - 1 (7) flows'),
    ("video.brightness", [],
     'invalid config value video.brightness=[]: '
     'expected a non-empty list of brightness changes'),
    ("video.margin", -1,
     'invalid config value video.margin=-1.0: '
     'expected a finite number >= 0'),
    ('kri.data', 'x',
     "invalid config value kri.data='x': expected a mapping"),
    ('kri.train', 'x',
     "invalid config value kri.train='x': expected a mapping"),
    ('kri.capacities', {'base': {'channels': [], 'hidden': 8}},
     'invalid config value kri.capacities.base.channels=[]: expected a non-empty list of channel counts'),
    ('kri.variants', {'X': {'description': 'd', 'capacity': 'huge'}},
     "invalid config value kri.variants.X.capacity='huge': expected one of kri.capacities (base, large)"),
    ('kri.models', [],
     'invalid config value kri.models=[]: expected a non-empty list of variant names'),
    ('kri.models', ['Nope'],
     "invalid config value kri.models[0]='Nope': expected one of kri.variants (NNet, NNetLarge, "),
    ('kri.scenarios', {},
     'invalid config value kri.scenarios={}: expected at least one scenario'),
    ('kri.samples', 0,
     'invalid config value kri.samples=0: expected an integer >= 1'),
    ('kri.draws', 0,
     'invalid config value kri.draws=0: expected an integer >= 1'),
    ('kri.seed', 'x',
     "invalid config value kri.seed='x': expected an integer"),
    ('kri.losses', ['cost'],
     "invalid config value kri.losses[0]='cost': expected one of class_change, misclassification, severity"),
    ('kri.severity', 'x',
     "invalid config value kri.severity='x': expected a mapping"),
    ('kri.deployments', {'d': {'fog': 0.5}},
     "invalid config value kri.deployments.d={'fog': 0.5}: expected non-negative weights summing to 1 "
     "(they sum to 0.5)"),
    ('kri.confidence', 1.0,
     'invalid config value kri.confidence=1.0: expected a confidence in (0, 1)'),
    ('kri.bootstrap', 10,
     'invalid config value kri.bootstrap=10: expected an integer >= 100'),
    ('kri.certify', 'x',
     "invalid config value kri.certify='x': expected a mapping"),
    ('kri.report', 'x',
     "invalid config value kri.report='x': expected a mapping"),
    ('kri.variant', 'Nope',
     "invalid config value kri.variant='Nope': expected one of kri.variants (NNet, "),
    ('kri.scenario', 'nope',
     "invalid config value kri.scenario='nope': expected one of kri.scenarios (brightness, "),
    ("tracking.mode", "x", "invalid config value tracking.mode='x': expected one of offline, disabled, online"),
    ("tracking.project", ["x"], "invalid config value tracking.project=['x']: expected a string"),
    ("tracking.entity", ["x"], "invalid config value tracking.entity=['x']: expected a string"),
    ("report.fig2_dataset", "x", "invalid config value report.fig2_dataset='x': expected one of a, b, c"),
    ("report.fig2_cost", 0, "invalid config value report.fig2_cost=0.0: expected a finite number > 0"),
    ("report.fig2_eps", 0.5, "invalid config value report.fig2_eps=0.5: expected one of certify.eps "
     "[0.001, 0.01, 0.025] (the radii that are certified)"),
    ("report.fig3_dataset", "x", "invalid config value report.fig3_dataset='x': expected one of a, b, c"),
    ("report.fig3_eps", 0.02, "invalid config value report.fig3_eps=0.02: expected one of certify.eps "
     "[0.001, 0.01, 0.025] (the radii that are certified)"),
    ("search.trial", -1, "invalid config value search.trial=-1: expected an integer >= 0"),
    ("resources", {"nope": {"threads": 1, "mem_mb": 100, "runtime": 5}},
     "invalid config value resources.nope={'threads': 1, 'mem_mb': 100, 'runtime': 5}: expected resources of a stage"),
    ("resources", {}, "invalid config value resources.data=None: expected the threads, mem_mb and runtime of its jobs"),
    ("sweep.name", ["x"], "invalid config value sweep.name=['x']: expected a string"),
    ("sweep.point", "p", "invalid config value sweep.name=None: expected the sweep's name when sweep.point is set"),
    ("sweep.own", ["nope"],
     "invalid config value sweep.own[0]='nope': expected a stage (assess_accuracy, assess_certify"),
    ("assess.model", ["x"], "invalid config value assess.model=['x']: expected a string"),
    ("assess.model", "net.onnx", "invalid config value assess.data=None: expected the data file (.npz or .parquet)"),
    ("assess.data", ["x"], "invalid config value assess.data=['x']: expected a string"),
    ("assess.properties", "x", "invalid config value assess.properties='x': expected a list"),
    ("assess.name", ["x"], "invalid config value assess.name=['x']: expected a string"),
    ("assess.tolerance", 0, "invalid config value assess.tolerance=0.0: expected a finite number > 0"),
    ("assess.domain", [1, 0], "invalid config value assess.domain=[1.0, 0.0]: expected [lo, hi] with lo < hi"),
    ("assess.costs", [[0, 1]], "invalid config value assess.costs=[[0.0, 1.0]]: expected a square matrix"),
    ("assess.certify", {"method": "crown", "methods": ["ibp"]},
     "invalid config value assess.certify.method='crown': expected one of assess.certify.methods ['ibp']"),
    ("assess.proven", {"samples": 0}, "invalid config value assess.proven.samples=0: expected an integer >= 1"),
    ("assess.vnnlib", {"methods": ["magic"]},
     "invalid config value assess.vnnlib.methods[0]='magic': expected one of falsify, ibp, crown, alpha-crown, milp"),
    ("assess.kri", {"scenarios": ["nope"]},
     "invalid config value assess.kri.scenarios[0]='nope': expected a component of kri.scenarios (brightness"),
    ("assess.property", ["x"], "invalid config value assess.property=['x']: expected a string"),
    ("results_dir", ["x"], "invalid config value results_dir=['x']: expected a string"),
    ("threads", 0, "invalid config value threads=0: expected an integer >= 1"),
    ("threads", "2", "invalid config value threads='2': expected an integer"),
]


@pytest.fixture(scope="module")
def composed() -> dict:
    return OmegaConf.to_container(compose(["experiment=quick"]))


def _with(data: dict, key: str, value: object) -> dict:
    data = copy.deepcopy(data)
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    return data


def test_every_key_of_the_schema_is_covered():
    """A new key of the schema gets a line in PER_KEY."""
    covered = {key for key, _, _ in PER_KEY}
    keys = {f"{section}.{name}" if name else section
            for section, info in Config.model_fields.items()
            for name in (getattr(info.annotation, "model_fields", None) or [""])}
    assert keys - covered == set()


@pytest.mark.parametrize(("key", "value", "message"), PER_KEY, ids=[f"{k}={v!r}" for k, v, _ in PER_KEY])
def test_each_key_refuses_what_it_does_not_allow(composed, key, value, message):
    with pytest.raises(ConfigError) as info:
        validate(_with(composed, key, value))
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_the_composed_defaults_validate(composed):
    assert validate(composed).model_dump() == composed


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+foo=1", "unknown config key foo: expected one of grid, dataset, model, train, search, certify, "
                   "images, proven, ensemble, video, kri, assess, tracking, report, resources, sweep, results_dir, "
                   "threads"),
        ("foo=1", "unknown config key foo: expected one of grid, "),
        ("+train.foo=1", "unknown config key train.foo: expected one of cost_fn, cost_fp, lr, weight_decay, "
                         "batch_size, max_epochs, patience, seed, hparams_file"),
        ("train.foo=1", "unknown config key train.foo: expected one of cost_fn, "),
        ("train.lr.x=1", "unknown config key train.lr.x: train.lr is a value, not a section"),
        ("train.lr=abc", "invalid config value train.lr='abc': expected a number"),
        ("model.depth=true", "invalid config value model.depth=True: expected an integer"),
        ("ensemble.smt=maybe", "invalid config value ensemble.smt='maybe': expected true or false"),
        ("certify.eps=abc", "invalid config value certify.eps='abc': expected a list"),
        ("dataset=d", "invalid configuration: In 'config': Could not find 'dataset/d' Available options in "
                      "'dataset': a b c"),
        ("tracking=foo", "invalid configuration: In 'config': Could not find 'tracking/foo' Available options in "
                         "'tracking': disabled offline online"),
        ("grid.datasets=[a,b", "invalid configuration: no viable alternative at input '[a,b'"),
        ("certify.eps.x=0.5", "invalid override certify.eps.x=0.5: invalid literal for int()"),
        ("grid.name=${nope}", "invalid config value grid.name: Interpolation key 'nope' not found"),
        ("results_dir=${hydra:runtime.cwd}", "invalid config value results_dir: ValueError raised while "
                                             "resolving interpolation: HydraConfig was not set"),
    ],
)
def test_unknown_keys_types_and_group_options_fail_in_one_line(override, message):
    with pytest.raises(ConfigError) as info:
        compose([override])
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_numbers_given_for_names_are_text():
    cfg = compose(["grid.name=2024", "tracking.entity=42"])
    assert (cfg.grid.name, cfg.tracking.entity) == ("2024", "42")


def test_floats_are_floats_and_the_config_is_struct():
    cfg = compose(["train.cost_fn=10", "grid.costs=[1,10]"])
    assert isinstance(cfg.train.cost_fn, float) and all(isinstance(c, float) for c in cfg.grid.costs)
    assert OmegaConf.is_struct(cfg)
    with pytest.raises(ConfigAttributeError):
        _ = cfg.train.no_such_key


# --- report: the figures' eps must be certified ---------------------------------------------------


def test_report_eps_follow_certify_eps():
    cfg = compose(["certify.eps=[0.5]", "report.fig2_eps=0.5", "report.fig3_eps=0.5"])
    assert (cfg.report.fig2_eps, cfg.report.fig3_eps) == (0.5, 0.5)
    with pytest.raises(ConfigError, match=r"^invalid config value report\.fig2_eps=0\.025: expected one of "
                                          r"certify\.eps \[0\.5\]"):
        compose(["certify.eps=[0.5]"])


# --- the keys the search chooses: refused where they would be ignored -----------------------------


def test_searched_keys_apply_to_a_hand_run_without_a_search_result():
    cfg = compose(["train.lr=0.01", "train.weight_decay=0.001", "model.depth=3", "model.width=8", "model.dropout=0.1"])
    assert (cfg.train.lr, cfg.model.depth) == (0.01, 3)


def test_the_defaults_go_with_a_search_result():
    assert compose(["train.hparams_file=results/quick/search/a_c1.json"]).train.hparams_file.endswith("a_c1.json")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=0.01", "invalid config value train.lr=0.01: expected its default 0.001 when train.hparams_file "
                          "is set (the search winner's value is trained); the search chooses it from search.lrs"),
        ("train.weight_decay=0.1", "invalid config value train.weight_decay=0.1: expected its default 0.0 when "
                                   "train.hparams_file is set"),
        ("model.depth=3", "invalid config value model.depth=3: expected its default 2 when train.hparams_file"),
        ("model.width=8", "invalid config value model.width=8: expected its default 64 when train.hparams_file"),
        ("model.dropout=0.1", "invalid config value model.dropout=0.1: expected its default 0.0 when"),
    ],
)
def test_searched_keys_are_refused_with_a_search_result(override, message):
    with pytest.raises(ConfigError) as info:
        compose([override, "train.hparams_file=search.json"])
    assert str(info.value).startswith(message)


def test_the_pipeline_refuses_searched_keys_at_compose_time():
    with pytest.raises(ConfigError, match=r"^invalid config value train\.lr=0\.01: expected its default 0\.001 in "
                                          r"the pipeline, which trains the search winner"):
        compose_pipeline(["experiment=smoke", "train.lr=0.01"])


# --- composing several configs --------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [["experiment=smoke"], ["experiment=quick", "train.batch_size=64", "tracking=disabled"],
     ["experiment=smoke", "ensemble.rows=[25]", "grid.datasets=[c,a]"]],  # the last: full composes
)
def test_compose_pipeline_equals_a_compose_per_data_set(overrides):
    cfg, per_dataset = compose_pipeline(overrides)
    assert cfg == compose(overrides)
    assert list(per_dataset) == list(cfg.grid.datasets)
    singles = compose_many([overrides + [f"dataset={d}"] for d in cfg.grid.datasets])
    for (name, variant), single in zip(per_dataset.items(), singles, strict=True):
        assert variant == single
        assert variant.dataset.name == name
        assert OmegaConf.is_readonly(variant)


def test_a_full_compose_cache_still_returns_every_config(monkeypatch):
    from nnassure import config

    monkeypatch.setattr(config, "_COMPOSED_MAX", 1)
    first, second = compose_many([["experiment=smoke"], ["experiment=quick"]])  # the second evicts the first
    assert (first.grid.name, second.grid.name) == ("smoke", "quick")


def test_compose_many_reports_the_bad_one():
    with pytest.raises(ConfigError, match="model.depth"):
        compose_many([["experiment=smoke"], ["model.depth=9"]])


def test_compose_many_reports_the_first_bad_list_whichever_way_it_is_bad(monkeypatch):
    from nnassure import config

    monkeypatch.setattr(config, "_COMPOSED", {})
    with pytest.raises(ConfigError, match="train.lrr"):  # a bad key before a bad group option
        compose_many([["train.lrr=1"], ["dataset=zz"]])
    with pytest.raises(ConfigError, match="yy"):
        compose_many([["dataset=yy"], ["dataset=zz"]])


# Lists of overrides as the stage commands carry them, and the forms Hydra's grammar allows.
KEY_OVERRIDE_LISTS = [
    ["experiment=quick", "results_dir=/tmp/x", "tracking=disabled", "dataset=b", "train.cost_fn=10", "threads=2"],
    ["experiment=smoke", "dataset=c", "certify.eps=[0.01,0.05]", "report.fig2_eps=0.05", "train.lr=1e-3"],
    ["experiment=quick", "train.lr=0.1", "train.lr=0.2"],  # the last one wins, as in Hydra
    ["train.lr=0.1", "experiment=smoke"],  # a key before the group that also sets it
    ["experiment=quick", "grid.name='my run'", "tracking.entity=null", "kri.models=[NNet,GCE]"],
    ["experiment=quick", "+kri.scenarios.fog2={family:weather,kind:fog,params:{fog_coef:[0.1,0.3]}}"],
    ["experiment=quick", "~kri.certify", "kri.models=[NNet]"],
    ["experiment=quick", "sweep.name='eps=0.1,0.2'", "sweep.own=[certify,report]"],
    ["experiment=quick", "dataset=a", "~ensemble", "threads=1"],
    # A dict on a group's name and a dotted key whose path is a group directory are key
    # overrides to Hydra, applied in their place among the others: the last one wins.
    ["experiment=quick", "train.lr=0.2", "train={lr:0.1}"],
    ["experiment=quick", "dataset.n_samples=50", "dataset={n_samples:100}"],
    ["experiment=quick", "resources.train.threads=2", "resources={train:{threads:3}}"],
    ["experiment=quick", "kri.scenarios.gaussian.params.sigma=0.2", "kri.scenarios={gaussian:{params:{sigma:0.1}}}"],
]


@pytest.mark.parametrize("overrides", KEY_OVERRIDE_LISTS)
def test_key_overrides_on_a_cached_composition_equal_hydra_composing_them_all(overrides, monkeypatch):
    from nnassure import config

    monkeypatch.setattr(config, "_COMPOSED", {})
    split = config._split_overrides(overrides)
    assert split is not None and split[1], "the list should take the cached path"
    with config._hydra():
        whole = OmegaConf.to_container(OmegaConf.create(config._compose_data(overrides)), resolve=True)
    config.warm(overrides)  # as the warm-start server does before it forks a job
    assert list(config._COMPOSED) == [(config._conf_state(), split[0])]
    (fast,) = config._composed([overrides])
    assert fast == whole


@pytest.mark.parametrize("overrides", [["experiment=quick", "lr=0.1,0.2"], ["hydra.job.name=x"],
                                       ["dataset@foo=a"], ["hydra/job_logging=disabled"],
                                       ["+hydra/job_logging=disabled"], ["~hydra/job_logging"]])
def test_what_only_hydra_can_compose_is_left_to_it(overrides):
    from nnassure import config

    assert config._split_overrides(overrides) is None


def test_a_key_override_hydra_refuses_is_reported_by_hydra_after_a_cached_composition(monkeypatch):
    from nnassure import config

    monkeypatch.setattr(config, "_COMPOSED", {})
    config.warm(["experiment=quick"])
    with pytest.raises(ConfigError) as info:
        compose(["experiment=quick", "train.lr.x=1"])
    assert str(info.value).startswith("unknown config key train.lr.x: train.lr is a value, not a section")
