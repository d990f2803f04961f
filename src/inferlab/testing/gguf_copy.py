"""A copy of a GGUF model with metadata keys added (the ``gguf`` package; tests only).

The end-to-end FIM tests use it to give the embedded SmolLM2 — a model not trained for FIM — the
``tokenizer.ggml.fim_*_token_id`` keys naming five of its own existing special tokens, so
llama-server's ``/infill`` and the generic GGUF family run on a real engine. Quality is not what
such a test measures: the model never learnt these tokens' meaning.
"""

from __future__ import annotations

from pathlib import Path


def copy_with_uint32_keys(source: Path, target: Path, keys: dict[str, int]) -> Path:
    import gguf

    reader = gguf.GGUFReader(str(source))
    architecture = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(target), arch=architecture, endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF.") or field.name in keys:
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    for name, value in keys.items():
        writer.add_uint32(name, value)
    for tensor in reader.tensors:
        writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data)
    writer.close()
    return target
