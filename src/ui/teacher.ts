// The link's teacher controls as two questions every panel asks: is this control group hidden, is it locked?
import { usePlayground } from '../state/useStore.ts';
import type { ControlName } from '../state/url.ts';

export interface TeacherControls {
  hidden(name: ControlName): boolean;
  locked(name: ControlName): boolean;
}

export function useTeacherControls(): TeacherControls {
  const hide = usePlayground((s) => s.share.hide);
  const lock = usePlayground((s) => s.share.lock);
  return { hidden: (name) => hide.includes(name), locked: (name) => lock.includes(name) };
}
