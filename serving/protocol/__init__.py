"""Wire formats: TF Serving and Open Inference Protocol bodies <-> one typed request/response.

Decoders turn a body into an :class:`~serving.protocol.types.InferRequest` (numpy arrays
by input name); encoders turn an :class:`~serving.protocol.types.InferResponse` back into
the body the client's protocol expects. The model layer never sees a wire format.
"""
