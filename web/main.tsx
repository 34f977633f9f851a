import { render } from 'preact';
import { startRouter } from './lib/router.ts';
import { restore } from './lib/session.ts';
import { App } from './shell/app.tsx';
import './styles.css';

startRouter();
render(<App />, document.getElementById('app')!);
void restore();
