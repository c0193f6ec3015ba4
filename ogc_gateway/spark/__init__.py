"""Spark: `spark.read.format("image-service")` / `df.write.format("image-service")` (the `[spark]`
extra: pyspark >= 4.0 with pyarrow, Java 17).

    from ogc_gateway.spark import register, register_gis, to_numpy
    register(spark)
    df = spark.read.format("image-service").option("tileColumns", 512).load(URL)
"""

from ..client.gis import register_gis, unregister_gis
from .raster import SCHEMA_DDL, has_spatial_reference, to_dataset, to_numpy

__all__ = ["register", "register_gis", "unregister_gis", "to_numpy", "to_dataset", "SCHEMA_DDL",
           "has_spatial_reference"]


def register(spark) -> None:
    """Register the `image-service` data source with a SparkSession."""
    from .datasource import ImageServiceDataSource

    spark.dataSource.register(ImageServiceDataSource)
