// The parser ships no types: what the metrics test reads of its output.
declare module 'parse-prometheus-text-format' {
  export default function parsePrometheusTextFormat(text: string): Array<{ name: string; help: string; type: string; metrics: Array<Record<string, unknown>> }>;
}
