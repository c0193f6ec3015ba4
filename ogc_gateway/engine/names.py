"""The engine's vocabulary: str-valued enumerations (so config values and string comparisons keep
working) and the one table of each word the faces and the config accept in many spellings.

Each face maps its protocol's words onto these enums in one place; the engine sees only members.
"""

from __future__ import annotations

from enum import StrEnum


class MosaicMethod(StrEnum):
    """How the items of a mosaic are ordered (ArcGIS's canonical esriMosaic* names)."""

    NONE = "esriMosaicNone"
    CENTER = "esriMosaicCenter"
    NORTHWEST = "esriMosaicNorthwest"
    NADIR = "esriMosaicNadir"
    VIEWPOINT = "esriMosaicViewpoint"
    ATTRIBUTE = "esriMosaicAttribute"
    LOCK_RASTER = "esriMosaicLockRaster"
    SEAMLINE = "esriMosaicSeamline"


class Resampling(StrEnum):
    """How source pixels become output pixels."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    CUBIC = "cubic"
    MODE = "mode"


class OutputFormat(StrEnum):
    """The encoder's output formats: 8-bit pictures, and raw formats that keep the pixel values."""

    JPGPNG = "jpgpng"
    PNG = "png"
    PNG8 = "png8"
    PNG24 = "png24"
    PNG32 = "png32"
    JPG = "jpg"
    BMP = "bmp"
    GIF = "gif"
    TIFF = "tiff"
    LERC = "lerc"
    BIP = "bip"
    BSQ = "bsq"

    @property
    def picture(self) -> bool:
        return self not in (OutputFormat.TIFF, OutputFormat.LERC, OutputFormat.BIP, OutputFormat.BSQ)


class Compression(StrEnum):
    """GeoTIFF compressions; `gdal` is the creation option's value ("lz77" is ArcGIS's Deflate)."""

    NONE = "none"
    JPEG = "jpeg"
    DEFLATE = "deflate"
    LZW = "lzw"
    PACKBITS = "packbits"
    CCITTRLE = "ccittrle"

    @classmethod
    def _missing_(cls, value: object) -> Compression | None:
        return cls.DEFLATE if isinstance(value, str) and value.lower() == "lz77" else None

    @property
    def gdal(self) -> str | None:
        return None if self is Compression.NONE else self.value.upper()


MOSAIC_METHODS = tuple(MosaicMethod)
RESAMPLINGS = tuple(Resampling)
# The root JSON's short names (defaultMosaicMethod, allowedMosaicMethods).
MOSAIC_SHORT = {MosaicMethod.NONE: "None", MosaicMethod.CENTER: "Center", MosaicMethod.NORTHWEST: "NorthWest",
                MosaicMethod.NADIR: "Nadir", MosaicMethod.VIEWPOINT: "Viewpoint",
                MosaicMethod.ATTRIBUTE: "ByAttribute", MosaicMethod.LOCK_RASTER: "LockRaster",
                MosaicMethod.SEAMLINE: "Seamline"}
# The JS API's and the geoprocessing tools' names (BY_ATTRIBUTE, CLOSEST_TO_CENTER, ...), with
# underscores and spaces dropped.
_MOSAIC_ALIASES = {"byattribute": MosaicMethod.ATTRIBUTE, "closesttocenter": MosaicMethod.CENTER,
                   "closesttonadir": MosaicMethod.NADIR, "closesttoviewpoint": MosaicMethod.VIEWPOINT}

MOSAIC_OPERATIONS = ("MT_FIRST", "MT_LAST", "MT_MIN", "MT_MAX", "MT_MEAN", "MT_BLEND", "MT_SUM")

# The one interpolation table: every spelling (lower case) of ArcGIS (interpolation, the config's
# default_resampling) and OGC (WCS 1.0 tokens, WCS 1.1 / 2.0 names and URIs) -> the engine's resampling.
_OGC_INTERPOLATION = "http://www.opengis.net/def/interpolation/ogc/1/"
RESAMPLING = {
    "rsp_nearestneighbor": Resampling.NEAREST, "nearest": Resampling.NEAREST, "nearestneighbor": Resampling.NEAREST,
    "nearest neighbor": Resampling.NEAREST, "nearest-neighbor": Resampling.NEAREST,
    _OGC_INTERPOLATION + "nearest-neighbor": Resampling.NEAREST,
    "rsp_bilinearinterpolation": Resampling.BILINEAR, "bilinear": Resampling.BILINEAR, "linear": Resampling.BILINEAR,
    _OGC_INTERPOLATION + "linear": Resampling.BILINEAR,
    "rsp_cubicconvolution": Resampling.CUBIC, "cubic": Resampling.CUBIC, "bicubic": Resampling.CUBIC,
    _OGC_INTERPOLATION + "cubic": Resampling.CUBIC,
    "rsp_majority": Resampling.MODE, "majority": Resampling.MODE,
}
RESAMPLING_ARCGIS = {Resampling.NEAREST: "Nearest", Resampling.BILINEAR: "Bilinear", Resampling.CUBIC: "Cubic",
                     Resampling.MODE: "Majority"}


def canonical_mosaic_method(name: str) -> MosaicMethod | None:
    """esriMosaicNorthwest for 'NorthWest', 'northwest', 'esriMosaicNorthWest', 'NORTH_WEST' ...;
    None if unknown."""
    key = name.strip().lstrip("+").strip().lower().replace("_", "").replace(" ", "")
    if key.startswith("esrimosaic"):
        key = key[len("esrimosaic"):]
    if key in _MOSAIC_ALIASES:
        return _MOSAIC_ALIASES[key]
    for canonical in MosaicMethod:
        if canonical[len("esriMosaic"):].lower() == key:
            return canonical
    return None


def canonical_mosaic_operation(name: str) -> str | None:
    """MT_FIRST for 'MT_FIRST', 'first', 'First' ...; None if unknown."""
    key = name.strip().lstrip("+").strip().upper()
    if not key.startswith("MT_"):
        key = "MT_" + key
    return key if key in MOSAIC_OPERATIONS else None


def canonical_resampling(name: str, offered: tuple[Resampling, ...] = RESAMPLINGS) -> Resampling | None:
    """Resampling.BILINEAR for 'RSP_BilinearInterpolation', 'Bilinear', 'linear', an OGC URI ...;
    None if unknown or not among the methods the asking face `offered`."""
    found = RESAMPLING.get(name.strip().lstrip("+").strip().lower())
    return found if found in offered else None
