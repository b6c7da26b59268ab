// `graft info`: adapter, driver, enabled features and limits.
import { Runtime } from '../runtime/runtime.js';

export async function infoCommand(opts: { json?: boolean }): Promise<void> {
  const rt = await Runtime.create();
  const s = rt.summary();
  if (opts.json) {
    console.log(JSON.stringify(s, null, 2));
  } else {
    console.log(`adapter      ${s.description || s.device || '(unnamed)'}`);
    console.log(`vendor       ${s.vendor || '-'}   architecture ${s.architecture || '-'}`);
    console.log(`fallback     ${s.isFallbackAdapter ? 'yes (CPU/software adapter)' : 'no'}`);
    console.log(`features     ${s.enabledFeatures.join(', ')}`);
    console.log(`adapter has  ${s.adapterFeatures.join(', ')}`);
    console.log('limits');
    for (const [k, v] of Object.entries(s.limits)) console.log(`  ${k.padEnd(44)} ${v}`);
  }
  rt.destroy();
}
