/** Mobility Header wire codec: the public surface of src/wire/mh. */
export * from './constants.js';
export * from './messages.js';
export * from './codec.js';
export * from './checksum.js';
export * from './seq.js';
export * from './timestamps.js';
export { OPTION_SPECS, optionName, optionSpec, alignmentPad, type OptionSpec, type Alignment } from './options.js';
export { WireError, type WireErrorReason, type DecodeResult } from '../errors.js';
