"""Convolutions (N-d, NC[D]HW): the forward op and its backward ops, each one OpDef.

SKELETON: owned by the conv work; the builders below are the public names.
"""
from __future__ import annotations


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, name=None):
    raise NotImplementedError("conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, name=None):
    raise NotImplementedError("conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, name=None):
    raise NotImplementedError("conv3d")
