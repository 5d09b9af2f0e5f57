// Router lenses: pure functions from RoutingTraces and tokens to the statistics people ask of an MoE
// over a corpus (docs/lenses.md). Each lens is an accumulator (add one scored window at a time, so a
// worker can report progress and stop between windows) plus a one-call function over all windows;
// every result carries one plain sentence that reads its figure.

export { LensAbortedError, LensError } from './errors.ts';
export { expertName, type LensAccumulator, type LensWindow, type LogitWindow } from './types.ts';
export type { LensShape } from './check.ts';
export {
  createDomainLens,
  domainSpecialisation,
  type DomainLens,
  type DomainRow,
  type DomainSpecialist,
} from './domain.ts';
export {
  createVocabLens,
  vocabSpecialisation,
  type ExpertInput,
  type TokenConcentration,
  type TokenCount,
  type VocabExpert,
  type VocabLayer,
  type VocabLens,
  type VocabOptions,
} from './vocab.ts';
export { coactivation, createCoactivationLens, type CoactivationLens, type CoactivationPair } from './coactivation.ts';
export { createLocalityLens, disjointChance, locality, type LocalityLayer, type LocalityLens } from './locality.ts';
export { createLoadLens, loadBalance, type LoadLayer, type LoadLens } from './load.ts';
export {
  createTradeoffPoint,
  DEFAULT_THRESHOLDS,
  defaultTradeoffModes,
  TRADEOFF_CLOSE,
  tradeoffLens,
  type TradeoffLens,
  type TradeoffPoint,
} from './tradeoff.ts';
export {
  agreement,
  agreementShape,
  createAgreementLens,
  type AgreementAccumulator,
  type AgreementLayer,
  type AgreementLens,
} from './agreement.ts';
export {
  analyzeCorpus,
  compareRuns,
  lensShape,
  planWindows,
  scoreWindow,
  type AnalyzeOptions,
  type CompareOptions,
  type CompareSide,
  type CorpusAnalysis,
  type LensProgress,
  type LensText,
  type RunHooks,
  type TextWindows,
} from './corpus.ts';
export {
  agreementTable,
  coactivationTable,
  concentrationTable,
  domainTable,
  loadTable,
  localityTable,
  tableToCsv,
  tableToObjects,
  tradeoffTable,
  vocabTable,
  type Cell,
  type LensTable,
} from './table.ts';
