"""Canonical names for the enumerations that several faces and the config accept in many spellings."""

from __future__ import annotations

MOSAIC_METHODS = ("esriMosaicNone", "esriMosaicCenter", "esriMosaicNorthwest", "esriMosaicNadir",
                  "esriMosaicViewpoint", "esriMosaicAttribute", "esriMosaicLockRaster",
                  "esriMosaicSeamline")
# The root JSON's short names (defaultMosaicMethod, allowedMosaicMethods).
MOSAIC_SHORT = {"esriMosaicNone": "None", "esriMosaicCenter": "Center",
                "esriMosaicNorthwest": "NorthWest", "esriMosaicNadir": "Nadir",
                "esriMosaicViewpoint": "Viewpoint", "esriMosaicAttribute": "ByAttribute",
                "esriMosaicLockRaster": "LockRaster", "esriMosaicSeamline": "Seamline"}
# The JS API's and the geoprocessing tools' names (BY_ATTRIBUTE, CLOSEST_TO_CENTER, ...), with
# underscores and spaces dropped.
_MOSAIC_ALIASES = {"byattribute": "esriMosaicAttribute", "closesttocenter": "esriMosaicCenter",
                   "closesttonadir": "esriMosaicNadir", "closesttoviewpoint": "esriMosaicViewpoint"}

MOSAIC_OPERATIONS = ("MT_FIRST", "MT_LAST", "MT_MIN", "MT_MAX", "MT_MEAN", "MT_BLEND", "MT_SUM")

# interpolation / default_resampling spellings -> the engine's resampling names.
RESAMPLING = {"rsp_nearestneighbor": "nearest", "nearest": "nearest", "nearestneighbor": "nearest",
              "rsp_bilinearinterpolation": "bilinear", "bilinear": "bilinear",
              "rsp_cubicconvolution": "cubic", "cubic": "cubic",
              "rsp_majority": "mode", "majority": "mode"}
RESAMPLING_ARCGIS = {"nearest": "Nearest", "bilinear": "Bilinear", "cubic": "Cubic", "mode": "Majority"}


def canonical_mosaic_method(name: str) -> str | None:
    """esriMosaicNorthwest for 'NorthWest', 'northwest', 'esriMosaicNorthWest', 'NORTH_WEST' ...;
    None if unknown."""
    key = name.strip().lstrip("+").strip().lower().replace("_", "").replace(" ", "")
    if key.startswith("esrimosaic"):
        key = key[len("esrimosaic"):]
    if key in _MOSAIC_ALIASES:
        return _MOSAIC_ALIASES[key]
    for canonical in MOSAIC_METHODS:
        if canonical[len("esriMosaic"):].lower() == key:
            return canonical
    return None


def canonical_mosaic_operation(name: str) -> str | None:
    """MT_FIRST for 'MT_FIRST', 'first', 'First' ...; None if unknown."""
    key = name.strip().lstrip("+").strip().upper()
    if not key.startswith("MT_"):
        key = "MT_" + key
    return key if key in MOSAIC_OPERATIONS else None


def canonical_resampling(name: str) -> str | None:
    """'bilinear' for 'RSP_BilinearInterpolation', 'Bilinear' ...; None if unknown."""
    return RESAMPLING.get(name.strip().lstrip("+").strip().lower())
