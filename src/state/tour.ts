// The guided tour's data (public/tour.json): steps, each a share link plus a text.
import type { BuiltInModel } from './store.ts';

export interface TourStep {
  title: string;
  text: string;
  /** Built-in model ids the step needs. */
  models: string[];
  /** The share-link fragment the step sets. */
  link: string;
}

export interface Tour {
  title: string;
  dwellSeconds: number;
  steps: TourStep[];
}

/** The step's models that this site does not have (none before the list of models is known). */
export function missingModels(step: TourStep, builtInModels: BuiltInModel[] | null): string[] {
  if (builtInModels === null) return [];
  return step.models.filter((id) => !builtInModels.some((m) => m.id === id));
}
