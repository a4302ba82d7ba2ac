# SPDX-License-Identifier: GPL-3.0-or-later
"""The cni_node role's check (tasks/converge.yml, nodenet.cni.cni_node_check) must judge a node by
the very options its install and converge tasks (tasks/converge_node.yml) apply: both take them
from cni_node_plugin_options and cni_node_state_options (vars/main.yml). An option given to a task
but not to the check could make the check call a node current that the task would change."""

import os

import yaml

ROLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles", "cni_node")


def load(*path):
    with open(os.path.join(ROLE, *path), encoding="utf-8") as f:
        return yaml.safe_load(f)


def task(tasks, module):
    found = [t for t in tasks if module in t]
    assert len(found) == 1, (module, found)
    return found[0]


def test_the_install_and_converge_tasks_take_every_option_from_the_vars_the_check_judges():
    role_vars = load("vars", "main.yml")
    node_tasks = load("tasks", "converge_node.yml")
    plugin = task(node_tasks, "nodenet.cni.cni_plugin")["nodenet.cni.cni_plugin"]
    assert plugin == {k: "{{ cni_node_plugin_options.%s }}" % k for k in role_vars["cni_node_plugin_options"]}
    state = task(node_tasks, "nodenet.cni.cni_node_state")["nodenet.cni.cni_node_state"]
    runtime = state.pop("runtime_dir")
    assert "cni_node_plugin_install.runtime_dir" in runtime
    assert state == {k: "{{ cni_node_state_options.%s }}" % k for k in role_vars["cni_node_state_options"]}
    # and the check gets the same vars, whole
    check = task(load("tasks", "converge.yml"), "nodenet.cni.cni_node_check")
    assert check["nodenet.cni.cni_node_check"]["plugin"] == "{{ cni_node_plugin_options }}"
    assert check["nodenet.cni.cni_node_check"]["state"] == "{{ cni_node_state_options }}"
    assert check["register"] == "cni_node_check"


def test_everything_but_the_check_is_in_the_one_include_it_skips():
    converge = load("tasks", "converge.yml")
    modules = [next(k for k in t if k.startswith(("nodenet.cni.", "ansible.builtin."))) for t in converge]
    assert modules == ["nodenet.cni.cni_node_check", "ansible.builtin.include_tasks"]
    include = converge[1]
    assert include["ansible.builtin.include_tasks"] == "converge_node.yml"
    assert include["when"] == "not (cni_node_check.current | default(false))"
    # main.yml: the subnets where needed, then the same entry point
    main = load("tasks", "main.yml")
    assert main[0]["ansible.builtin.include_tasks"] == "subnets.yml" and main[1]["ansible.builtin.import_tasks"] == "converge.yml"
    specs = load("meta", "argument_specs.yml")["argument_specs"]
    assert specs["converge"]["options"] == specs["main"]["options"]
