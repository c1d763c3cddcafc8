"""wdbench's run schemas in Hydra's ConfigStore, so that each default is written once: in the
dataclasses of wdbench.config. conf/config.yaml extends ``run_schema``; a group's YAML option holds
only what differs from its schema (a model option extends ``schema/model/<name>``, since a run's
model field takes any model's schema). Hydra imports every module under hydra_plugins when it starts,
so this registers before any config is composed, from the CLI, compose() or a script."""

from hydra.core.config_store import ConfigStore

from wdbench.config import MODEL_SCHEMAS, RunConfig

_store = ConfigStore.instance()
_store.store(name="run_schema", node=RunConfig, provider="wdbench")
for _name, _schema in MODEL_SCHEMAS.items():
    _store.store(group="schema/model", name=_name, node=_schema, provider="wdbench")
