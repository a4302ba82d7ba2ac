# SPDX-License-Identifier: GPL-3.0-or-later
"""Driving our CNI plugins the way a kubelet node does: containerd's CRI (and ctr) in test namespaces."""
