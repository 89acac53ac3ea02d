// Messages per second per channel over the last minute, drawn with uPlot.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const WINDOW = 60;
const HEIGHT = 160;
/** hh:mm:ss of a Unix second */
const clock = (sec: number) => new Date(sec * 1000).toLocaleTimeString([], { hour12: false });
const COLORS = ['#58a6ff', '#3fb950', '#d29922', '#f778ba', '#a371f7', '#79c0ff', '#ffa657', '#7ee787'];

export class RateChart {
  private readonly counts = new Map<string, Map<number, number>>();
  private plot: uPlot | null = null;
  private series: string[] = [];
  private framePending = false;

  constructor(private readonly el: HTMLElement) {
    this.draw();
    setInterval(() => this.draw(), 1000);
    new ResizeObserver(() => this.plot?.setSize({ width: this.el.clientWidth, height: HEIGHT })).observe(el);
  }

  add(ch: string, ts: number): void {
    const sec = Math.floor(ts / 1000);
    let perSec = this.counts.get(ch);
    if (!perSec) this.counts.set(ch, (perSec = new Map()));
    perSec.set(sec, (perSec.get(sec) ?? 0) + 1);
    // Redraw at most once a frame, so bursts (a replay) show at once.
    if (!this.framePending) {
      this.framePending = true;
      requestAnimationFrame(() => {
        this.framePending = false;
        this.draw();
      });
    }
  }

  private draw(): void {
    const now = Math.floor(Date.now() / 1000);
    const xs: number[] = [];
    for (let t = now - WINDOW + 1; t <= now; t++) xs.push(t);
    for (const perSec of this.counts.values()) for (const t of perSec.keys()) if (t < now - WINDOW) perSec.delete(t);
    const names = [...this.counts.keys()].sort();
    const data: uPlot.AlignedData = [xs, ...names.map((ch) => xs.map((t) => this.counts.get(ch)?.get(t) ?? 0))];
    if (!this.plot || names.join() !== this.series.join()) {
      this.plot?.destroy();
      this.series = names;
      this.plot = new uPlot(
        {
          width: this.el.clientWidth,
          height: HEIGHT,
          legend: { show: true, live: false },
          cursor: { show: false },
          axes: [
            { stroke: '#8b98a9', grid: { stroke: '#243041' }, ticks: { stroke: '#243041' }, values: (_u, ticks) => ticks.map(clock) },
            { stroke: '#8b98a9', grid: { stroke: '#243041' }, ticks: { stroke: '#243041' }, size: 40 },
          ],
          series: [{}, ...names.map((ch, i) => ({ label: ch, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false } }))],
        },
        data,
        this.el,
      );
    } else this.plot.setData(data);
  }
}
