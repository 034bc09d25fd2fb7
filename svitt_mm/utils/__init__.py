"""The bottom layer of svitt_mm: helpers every other layer may use. Import them from their modules:
``resources`` (``package://`` paths), ``errors`` (the user-error types), ``safe_load`` and ``weight_files``
(reading weights safely), ``safe_resume`` (the checkpoint allow-list), ``text`` (caption cleaning,
tokenizers, JSON lists), ``load_report`` and ``safetensors_rows``. Nothing here imports another svitt_mm package except
:mod:`svitt_mm.registry`; this file imports nothing, so that the light modules stay light."""
