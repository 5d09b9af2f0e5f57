// Checkpoint formats: safetensors, config.json, HF tensor names, loading and exporting.

export { CheckpointError } from './errors.ts';
export { parseSafetensors, writeSafetensors, type SafetensorsFile } from './safetensors.ts';
export {
  toFloat32,
  fromFloat32,
  bytesPerElement,
  numelOf,
  f16BitsToFloat,
  floatToF16Bits,
  floatToBf16Bits,
  SUPPORTED_DTYPES,
} from './dtype.ts';
export { specFromConfig, configFromSpec, SUPPORTED_ARCHITECTURES } from './config.ts';
export { weightsFromTensors, tensorsFromWeights } from './weights.ts';
export { loadCheckpoint, type Checkpoint } from './load.ts';
export { countParameters, type ParameterCount } from './params.ts';
export { exportCheckpoint } from './export.ts';
export { urlSource, memorySource, filesSource, type NamedBlob } from './sources.ts';
export {
  quantizeWeights,
  quantizeTensor,
  dequantize,
  isQuantized,
  tensorBytes,
  weightSetBytes,
  weightBytesBySchemes,
  parseQuantScheme,
  QUANT_SCHEMES,
  QuantizationError,
  ModelTooLargeError,
} from './quant.ts';
