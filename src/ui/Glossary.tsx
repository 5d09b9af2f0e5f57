// The words the numbers use, explained where the numbers are: a short glossary under the metrics.
// The same sentences are the metric labels' tooltips (TERMS), so a hover and the list never disagree.

export const TERMS = {
  nats: 'Loss is measured in nats: −ln p of the token that actually came next. 0 means the model was certain and right; ln 2 ≈ 0.69 is a coin flip; lower is better.',
  loss: 'Mean loss: the average over the text of −ln p(next token), in nats. It says how surprised the model is by the text; lower is better.',
  deltaLoss:
    'Δ loss: how much the mean loss changed when the routing changed, in nats. Positive means the new routing predicts the text worse.',
  kl: 'KL divergence (nats) between the next-token distributions before and after the routing change, averaged over positions: 0 means the model predicts exactly as before.',
  gateWeight:
    'Gate weight: how much a chosen expert’s output counts in the layer’s sum, from the router’s probability (renormalised over the chosen experts in most models).',
  active:
    'Parameters active: the share of all the model’s weights that one token actually used (everything outside the experts, plus the experts the router chose), measured over this text.',
  expertsPerLayer:
    'Experts / layer: how many experts an average token visited in each MoE layer. Top-2 routing gives 2; dense gives all of them.',
} as const;

export function Glossary() {
  return (
    <details className="glossary small" data-testid="glossary">
      <summary>What these numbers mean</summary>
      <dl>
        <dt>nats</dt>
        <dd>{TERMS.nats}</dd>
        <dt>mean loss</dt>
        <dd>{TERMS.loss}</dd>
        <dt>Δ loss</dt>
        <dd>{TERMS.deltaLoss}</dd>
        <dt>KL</dt>
        <dd>{TERMS.kl}</dd>
        <dt>gate weight</dt>
        <dd>{TERMS.gateWeight}</dd>
        <dt>parameters active</dt>
        <dd>{TERMS.active}</dd>
        <dt>experts / layer</dt>
        <dd>{TERMS.expertsPerLayer}</dd>
      </dl>
    </details>
  );
}
