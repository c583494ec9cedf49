"""Sysprep compliance for Huawei Cloud Workspace desktops, run as a FunctionGraph function."""
