# -*- coding: utf-8 -*-
# Copyright (c) nodenet.cni contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The runtime half: what libcni does for a container runtime.

confdir     finding and parsing configs in a conf dir (which one is active, and why)
cache       the libcni result cache (cniCacheV1), shared with Go runtimes
pluginexec  exec'ing one plugin with libcni's env, recorded for the trace
versions    the VERSION probe (which spec versions a plugin speaks)
chain       ADD/DEL/CHECK/GC/STATUS of a network list, with a trace of every exec
"""

from .cache import DEFAULT_CACHE_DIR, CacheEntry, CacheError, cached_result, list_attachments, read_entry
from .chain import ChainError, ChainResult, RuntimeConf, Runtime, ValidationReport, plugin_stdin
from .confdir import ConfError, ConfFileStatus, ConfNotFound, NetworkConfigList, conf_files, find_active, load_conf_file, scan
from .pluginexec import PluginExec
from .versions import PluginVersions, plugin_versions, probe_dir

__all__ = [
    "DEFAULT_CACHE_DIR",
    "CacheEntry",
    "CacheError",
    "ChainError",
    "ChainResult",
    "ConfError",
    "ConfFileStatus",
    "ConfNotFound",
    "NetworkConfigList",
    "PluginExec",
    "PluginVersions",
    "Runtime",
    "RuntimeConf",
    "ValidationReport",
    "cached_result",
    "conf_files",
    "find_active",
    "list_attachments",
    "load_conf_file",
    "plugin_stdin",
    "plugin_versions",
    "probe_dir",
    "read_entry",
    "scan",
]
