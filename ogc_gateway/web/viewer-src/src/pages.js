// Every HTML page of the gateway: copy buttons, sign-in, the token on links and forms, errors shown.
import { start } from './session.js';

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
