import { createApp } from 'vue';
import 'liveness-check'; // defines <liveness-check>
import App from './App.vue';

createApp(App).mount('#app');
