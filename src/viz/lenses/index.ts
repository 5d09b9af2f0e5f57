// The Lenses views: React renders the marks, d3 gives scales and shapes; each takes a lens result
// from src/engine/lens and draws it with its one-sentence reading and a table twin.
export { AgreementBars, type AgreementBarsProps } from './AgreementBars.tsx';
export { CoactivationHeatmap, type CoactivationHeatmapProps } from './CoactivationHeatmap.tsx';
export { DomainShares, type DomainSharesProps } from './DomainShares.tsx';
export { formatCell, LensFigure, rowsWhere, TableTwin } from './LensFigure.tsx';
export { LoadBars, type LoadBarsProps } from './LoadBars.tsx';
export { LocalityBars, type LocalityBarsProps } from './LocalityBars.tsx';
export { TradeoffPlot, type TradeoffCurve, type TradeoffPlotProps, tradeoffRows } from './TradeoffPlot.tsx';
export { VocabLists, type VocabListsProps } from './VocabLists.tsx';
