// The share link: the address bar always holds the experiment (written 150 ms after the last
// change), and "Copy share link" copies it.
import { formatShareFragment } from '../url.ts';
import { watch, type ControllerContext } from './context.ts';

export interface ShareActions {
  /** Keeps the address bar's fragment equal to the settings. */
  start(): void;
  /** Copies the link and says whether it could. */
  copyLink(): void;
}

/** `fragmentSuffix`: keys another view adds to the link (the Lenses view's, src/state/controller/lenses.ts). */
export function shareActions(ctx: ControllerContext, fragmentSuffix: () => string = () => ''): ShareActions {
  const { store, env } = ctx;
  return {
    start() {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const write = () => {
        clearTimeout(timer);
        timer = setTimeout(
          () => env.replaceFragment(`${formatShareFragment(store.getState().share)}${fragmentSuffix()}`),
          150,
        );
      };
      write();
      watch(ctx, (s) => s.share, write);
      ctx.cleanups.push(() => clearTimeout(timer));
    },
    copyLink() {
      const fragment = `${formatShareFragment(store.getState().share)}${fragmentSuffix()}`;
      env.replaceFragment(fragment);
      void env
        .copyText(env.linkTo(fragment))
        .then((copied) =>
          store.getState().setShareMessage(copied ? 'Link copied.' : 'Copy the address bar: it holds the link.'),
        );
    },
  };
}
