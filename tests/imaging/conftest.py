"""Upscalers shared by the DICOM and GeoTIFF tests: bicubic and the shipped ESPCN at x2."""

import pytest

import superres


@pytest.fixture(scope="module")
def bicubic():
    return superres.load("bicubic", 2, threads=1)


@pytest.fixture(scope="module")
def espcn():
    return superres.load("espcn", 2, threads=1)
