"""Run by /usr/bin/python3 (Debian's python3-qgis), not by the test interpreter: QGIS's ArcGIS REST
provider (arcgismapserver) draws an image service, headless, over a box, into a PNG.

    qgis_render.py SERVICE_URL CRS XMIN,YMIN,XMAX,YMAX WIDTH,HEIGHT OUT.png

Prints one JSON line: whether the layer is valid, its CRS and the renderer's errors.
"""
import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from qgis.core import QgsApplication, QgsRasterLayer  # noqa: E402

app = QgsApplication([], False)
app.initQgis()
url, crs, box, size, out = sys.argv[1:6]
layer = QgsRasterLayer(f"crs='{crs}' format='PNG32' layer='' url='{url}'", "service", "arcgismapserver")
result = {"valid": layer.isValid(), "crs": layer.crs().authid()}
if layer.isValid():
    # Imported only now: importing them before the application exists crashes QGIS 3.22.
    from qgis.core import QgsCoordinateReferenceSystem, QgsMapRendererSequentialJob, QgsMapSettings, QgsRectangle
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(QgsCoordinateReferenceSystem(crs))
    settings.setExtent(QgsRectangle(*(float(v) for v in box.split(","))))
    settings.setOutputSize(QSize(*(int(v) for v in size.split(","))))
    settings.setBackgroundColor(QColor(0, 0, 0, 0))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(out, "PNG")
    result["errors"] = [e.message for e in job.errors()]
    shown = settings.visibleExtent()
    result["extent"] = [shown.xMinimum(), shown.yMinimum(), shown.xMaximum(), shown.yMaximum()]
print(json.dumps(result), flush=True)
os._exit(0)          # QGIS 3.22 can crash while tearing down; the answer is out
