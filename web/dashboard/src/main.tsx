// Entry point of the fleet dashboard: adopt a path deep link, open the live stream, render the app.
import { render } from 'preact';
import { App } from './app';
import { live } from './live';
import { adoptPathLink } from './router';
import './styles.css';

adoptPathLink();
live.start();
render(<App />, document.getElementById('app')!);
