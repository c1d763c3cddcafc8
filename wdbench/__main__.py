"""``python -m wdbench [overrides]``: one run; ``-m`` for a sweep. Errors in the config are one line."""

import logging
import os
import sys


def main() -> None:
    # Let configuration errors reach us un-reformatted, so each is reported as one line.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    # Ask NVML, not the CUDA runtime, whether there is a GPU: the local launcher forks workers,
    # and CUDA initialised before a fork is unusable in the children.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    from wdbench.app import app
    from wdbench.config import ConfigError
    from wdbench.results import SweepFailed, SweepStopped

    try:
        app()
    except MissingConfigException as err:
        if err.options is not None and err.missing_cfg_file:
            group, _, choice = err.missing_cfg_file.rpartition("/")
            _fail(f"{group}={choice}: unknown choice; allowed: {', '.join(sorted(err.options))}")
        _fail(err)
    except ConfigCompositionException as err:
        _fail(_composition_error(err.__cause__) or err)
    except (ConfigError, OverrideParseException) as err:
        _fail(err)
    except ValueError as err:  # Hydra's error for `optim=null`; any other ValueError is not ours to word
        if not str(err).startswith("Config group override must be"):
            raise
        _fail(_null_group())
    except SweepFailed as err:
        _fail(err, code=1)
    except SweepStopped as err:
        _fail(err, code=128 + err.signum)


def _composition_error(cause) -> "str | None":
    """An override the typed schema (wdbench.config, through Hydra's ConfigStore) refuses, as one line."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ConfigTypeError, ValidationError

    from wdbench.config import LIST_FIELDS

    key, parent = getattr(cause, "full_key", None), getattr(cause, "parent_node", None)
    if not key:
        return None
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and parent is not None:
        if OmegaConf.get_type(parent) is dict:  # a free mapping (model.kwargs, model.rules), not a schema
            return f"{key}: not in the config yet; add it with +{key}=<value>"
        return f"{key}: unknown key; allowed: {', '.join(map(str, parent.keys()))}"
    if isinstance(cause, ConfigTypeError) and "deletion" in str(cause):
        return f"~{key}: a field of the schema cannot be removed; set it instead, e.g. {key}=null where it may be null"
    if isinstance(cause, ValidationError):
        if key in LIST_FIELDS:  # a scalar where a list belongs: say so, with an example
            return f"{key}={_override_value(key)}: expected a list, e.g. {key}={LIST_FIELDS[key]}"
        return f"{key}: {str(cause).splitlines()[0]}"
    return None


def _override_value(key: str) -> str:
    return next((arg.partition("=")[2] for arg in sys.argv[1:] if arg.lstrip("+~").partition("=")[0] == key), "")


def _null_group() -> str:
    from wdbench.app import CONF_DIR

    for arg in sys.argv[1:]:
        group, _, value = arg.lstrip("+~").partition("=")
        if value == "null" and (CONF_DIR / group).is_dir():
            choices = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
            return f"{group}=null: a config group needs a choice; allowed: {', '.join(choices)}"
    return "a config group was set to null: it needs a choice"


def _fail(err, code: int = 2) -> None:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    print(f"wdbench: error: {'; '.join(lines[:2])}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    # Every result is on disk and every worker has been joined: skip the interpreter's ~1 s
    # teardown of torch and friends.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
