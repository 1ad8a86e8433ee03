"""Logius' MijnOverheid Berichtenbox contract (GLOBE).

- :mod:`bbconnect.logius.globe`: the letter batch ``Berichten`` (ebMS action ``GLOBE-R-BV-Request``)
  and the processing report ``BerichtVerwerkResponse`` (``GLOBE-R-BV-Result``).
- :mod:`bbconnect.logius.wus`: the synchronous subscription check ``ValidateAbonnementen``
  (Digikoppeling WUS, SOAP 1.1).

Pure functions over bytes: no I/O, no AWS.
"""
