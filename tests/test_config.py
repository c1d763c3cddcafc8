"""Bad input: one line naming the field and what is allowed, exit code 2, no result touched."""
import json

import pytest
from hydra import compose, initialize_config_dir

from conftest import TINY
from wdbench.app import CONF_DIR
from wdbench.config import ConfigError, parse_run_config


def composed(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


BAD = [
    (["penalty=summ"], "penalty=summ: unknown choice; allowed: mean, per_step, sum"),
    (["model=vgg"], "model=vgg: unknown choice; allowed: mixer, resnet, vit"),
    (["data=mnist"], "data=mnist: unknown choice; allowed: cifar10, cifar100, digits"),
    (["optim=lbfgs"], "optim=lbfgs: unknown choice; allowed: adam, adamw, sgd"),
    (["penalty.apply=sideways"], "penalty.apply='sideways': unknown choice; allowed: coupled, decoupled, independent"),
    (["penalty.lam=-0.1"], "penalty.lam=-0.1: must be in [0, 1e+30]"),
    (["penalty.lam=inf"], "penalty.lam=inf: must be in [0, 1e+30]"),
    (["penalty=per_step", "penalty.lam=1e308"], "penalty.lam=1e+308: must be in [0, 1e+30]"),
    (["penalty.log10_lam=nan"], "penalty.log10_lam=nan: must be in [-30, 30] or null"),
    (["penalty.log10_lam=400"], "penalty.log10_lam=400.0: must be in [-30, 30] or null"),
    (["penalty.log10_coef=-301"], "penalty.log10_coef=-301.0: must be in [-30, 30] or null"),
    (["penalty.exclude=bias"], "penalty.exclude=bias: expected a list, e.g. penalty.exclude=[bias,norm]"),
    (["penalty.exclude=[bais,norm]"], "penalty.exclude: 'bais' matches no parameter of this model; allowed: bias, "
                                      "norm, or a name pattern that matches one"),
    (["optim=adam", "optim.betas=[2,0.9]"], "optim.betas=[2.0, 0.9]: must be two numbers in [0, 1)"),
    (["optim=adam", "optim.betas=[0.9]"], "optim.betas=[0.9]: must be two numbers in [0, 1), e.g. optim.betas=[0.9,0.999]"),
    (["optim.betas=0.9"], "optim.betas=0.9: expected a list, e.g. optim.betas=[0.9,0.999]"),
    (["optim=adam", "optim.eps=0"], "optim.eps=0.0: must be in (0, 1]"),
    (["optim.lr=1e308"], "optim.lr=1e+308: must be in (0, 1e+30]"),
    (["seed=100000000000000000000000"], "seed=100000000000000000000000: must be an integer in [0, 9223372036854775807]"),
    (["data.split_seed=-5"], "data.split_seed=-5: must be an integer in [0, 4294967295]"),
    (["data.image_size=100000"], "data.image_size=100000: must be in [1, 1024] or null"),
    (["model=vit", "model.mlp_ratio=0"], "model.mlp_ratio=0.0: must be > 0 and leave at least one hidden unit"),
    (["model=mixer", "model.tokens_mlp_ratio=-1"], "model.tokens_mlp_ratio=-1.0: must be > 0"),
    (["threads=100000"], "threads=100000: must be in [0, 1024] (0 = automatic)"),
    (["penalty.log10_lam=-2", "penalty.log10_coef=-2"],
     "penalty.log10_lam, penalty.log10_coef: set at most one (a grid in λ or in coef = λ·c)"),
    (["model.width=0"], "model.width=0: must be an integer >= 1"),
    (["model.width=8.5"], "model.width: Value '8.5' of type 'float' could not be converted to Integer"),
    (["model=vit", "model.width=20"], "model.width=20: must be a multiple of model.head_dim=8"),
    (["optim.batch_size=0"], "optim.batch_size=0: must be in [1, n_train=1437]"),
    (["optim.batch_size=1438"], "optim.batch_size=1438: must be in [1, n_train=1437]"),
    (["optim.epochs=0"], "optim.epochs=0: must be an integer >= 1"),
    (["data=cifar10"], "data.root: required for data=cifar10"),
    (["data=cifar10", "data.root=/no/such/dir"], "data.root=/no/such/dir: directory not found"),
    (["model.widht=8"], "model.widht: unknown key; allowed: name, width, blocks, small_input"),
    (["sed=1"], "sed: unknown key; allowed: "),
    (["-m", "model.width=8,-2"], "model.width=-2: must be an integer >= 1"),
    (["-m", "penalty=sum,meen"], "penalty=meen: unknown choice; allowed: mean, per_step, sum"),
    (["-m", "hydra/launcher=slurm_cpu", "hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=90"],
     "hydra.launcher.signal_delay_s=90: must be in (0, 60], at most half of hydra.launcher.timeout_min=2 minutes"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_touches_no_result(cli, tmp_path, args, message):
    finished = tmp_path / "out" / "multirun" / "default" / "model.width=64"
    finished.mkdir(parents=True)
    (finished / "result.json").write_text(json.dumps({"status": "completed"}))
    before = sorted(p.name for p in (tmp_path / "out").rglob("*"))
    code, _, err = cli(*args, "progress=false")
    assert code == 2
    assert err.strip().splitlines() == [f"wdbench: error: {err.strip().split(': ', 2)[2]}"]
    assert message in err
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == before
    assert json.loads((finished / "result.json").read_text()) == {"status": "completed"}


def test_an_exclude_pattern_that_matches_is_accepted_and_decays_what_it_should():
    run = parse_run_config(composed("model=vit", "penalty.exclude=[bias,norm,*pos_embed]"))
    assert run.penalty.exclude == ["bias", "norm", "*pos_embed"]


def test_log10_lam_sets_lam_and_adamw_means_decoupled():
    run = parse_run_config(composed("penalty.log10_lam=-2.5"))
    assert run.penalty.lam == pytest.approx(10 ** -2.5)
    assert parse_run_config(composed("optim=adamw")).penalty.apply == "decoupled"
    assert parse_run_config(composed("optim=adamw", "penalty.apply=coupled")).penalty.apply == "coupled"
    assert parse_run_config(composed("optim=adam")).penalty.apply == "coupled"


def test_every_shipped_choice_validates():
    for model in ("vit", "resnet", "mixer"):
        for penalty in ("sum", "mean", "per_step"):
            for optim in ("sgd", "adam", "adamw"):
                parse_run_config(composed(f"model={model}", f"penalty={penalty}", f"optim={optim}"))


def test_wrong_type_in_a_group_is_caught_by_the_schema():
    with pytest.raises(ConfigError, match="optim.nesterov"):
        parse_run_config(composed("optim.nesterov=maybe"))


def test_cfg_job_shows_the_resolved_config_and_help_lists_groups(cli):
    code, out, _ = cli("--cfg", "job", *TINY, "penalty=mean")
    assert code == 0 and "norm: mean" in out and "width: 4" in out
    code, out, _ = cli("--help")
    assert code == 0
    for group in ("model: mixer, resnet, vit", "penalty: mean, per_step, sum", "optim: adam, adamw, sgd",
                  "data: cifar10, cifar100, digits"):
        assert group in out
