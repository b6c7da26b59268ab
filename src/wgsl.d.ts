// Lets TypeScript import shaders/*.wgsl as text (esbuild and vitest inline them).
declare module '*.wgsl' {
  const source: string;
  export default source;
}
