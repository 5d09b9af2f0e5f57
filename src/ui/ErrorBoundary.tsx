import { Component, type ErrorInfo, type ReactNode } from 'react';

interface Props {
  /** What broke, in words ("the routing views"). */
  area: string;
  children: ReactNode;
}

interface State {
  error: Error | null;
}

/**
 * A render error in one part of the page shows a sentence in its place instead of blanking the
 * whole app. The experiment lives in the URL fragment, so "try again" loses nothing typed.
 */
export class ErrorBoundary extends Component<Props, State> {
  override state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error(`MoE Playground: ${this.props.area} failed to render`, error, info.componentStack);
  }

  override render(): ReactNode {
    if (!this.state.error) return this.props.children;
    return (
      <section className="error" role="alert" data-testid="render-error">
        <strong>
          Something went wrong while drawing {this.props.area}: {this.state.error.message}
        </strong>
        <p>Your prompt and settings are kept in the address bar.</p>
        <button type="button" onClick={() => this.setState({ error: null })}>
          Try again
        </button>
      </section>
    );
  }
}
