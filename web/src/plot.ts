import UPlot from 'uplot'
import type uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { h } from './dom.js'
import { epochSeconds } from './format.js'
import type { ReadingsSummary, SensorName } from './types.js'

/** A shaded interval on every chart, in seconds since the epoch (a label), or on one sensor's (a gap). */
export interface Band {
  from: number
  to: number
  color: string
  sensor?: SensorName
}

export interface PlotOptions {
  sensors: SensorName[]
  height?: number
  /** The visible range after the person zoomed or panned; the page asks for its summary. */
  onZoom?: (from: number, to: number) => void
  /** A range dragged out in label mode. */
  onSelect?: (from: number, to: number) => void
}

const AXES = [
  { name: 'x', color: '#d62728', fill: 'rgba(214, 39, 40, 0.25)' },
  { name: 'y', color: '#2ca02c', fill: 'rgba(44, 160, 44, 0.25)' },
  { name: 'z', color: '#1f77b4', fill: 'rgba(31, 119, 180, 0.25)' }
]
const GAP_FILL = 'rgba(120, 120, 120, 0.28)'
const LABEL_COLORS = ['#f4a261', '#8ecae6', '#b5e48c', '#cdb4db', '#ffd166', '#90be6d', '#f28482', '#84a59d']

/** A label's colour, the same for the same name everywhere on the page. */
export function labelColor (name: string): string {
  let hash = 0
  for (const char of name) hash = (hash * 31 + char.charCodeAt(0)) >>> 0
  return LABEL_COLORS[hash % LABEL_COLORS.length] as string
}

/**
 * One chart per sensor, x/y/z each drawn as its min/max envelope per bucket
 * of a readings summary (zoomed in far enough, min = max and it is the
 * signal). Charts share the cursor and the visible range; dragging zooms,
 * or in label mode selects a range. Gaps and labels are painted under the
 * lines.
 */
export class SummaryPlot {
  readonly element: HTMLElement
  private readonly charts = new Map<SensorName, uPlot>()
  private bands: Band[] = []
  private applying = false
  private zoomTimer: ReturnType<typeof setTimeout> | undefined
  private labelling = false
  /** The range the last summary was drawn for: a scale change to it is the page's own, not the person's. */
  private shown: [number, number] | undefined

  constructor (private readonly options: PlotOptions) {
    this.element = h('div', { class: 'plots' })
  }

  /** Creates the charts once the element is in the page (their width is the element's). */
  mount (): void {
    const width = this.width
    for (const sensor of this.options.sensors) {
      const holder = h('div', { class: 'plot', 'data-sensor': sensor }, h('h3', {}, sensor))
      this.element.append(holder)
      this.charts.set(sensor, new UPlot(this.chartOptions(sensor, width), [[], [], [], [], [], [], []], holder))
    }
    this.element.append(h('p', { class: 'legend' },
      ...AXES.map(axis => h('span', { class: `axis-${axis.name}` }, `${axis.name} `)),
      h('span', { class: 'gap-swatch' }, 'gap')))
  }

  /** Buckets to ask for: about one per pixel of the plotting area. */
  get width (): number {
    return Math.max(300, Math.floor(this.element.clientWidth || 800))
  }

  get labelMode (): boolean {
    return this.labelling
  }

  set labelMode (on: boolean) {
    this.labelling = on
    for (const chart of this.charts.values()) {
      (chart.cursor.drag as uPlot.Cursor.Drag).setScale = !on
      chart.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false)
    }
  }

  clearSelection (): void {
    for (const chart of this.charts.values()) chart.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false)
  }

  /** The visible range in seconds since the epoch. */
  get range (): [number, number] | undefined {
    const chart = this.charts.values().next().value
    const { min, max } = chart?.scales.x ?? {}
    return min === undefined || max === undefined || min === null || max === null ? undefined : [min, max]
  }

  setSummary (summary: ReadingsSummary): void {
    if (!summary.from || !summary.to) return
    const from = epochSeconds(summary.from)
    const to = epochSeconds(summary.to)
    const step = summary.bucketMicros / 1e6
    const xs = Array.from({ length: summary.buckets }, (_, i) => from + (i + 0.5) * step)
    this.shown = [from, to]
    this.applying = true
    try {
      for (const [sensor, chart] of this.charts) {
        const columns = Array.from({ length: 6 }, () => new Array<number | null>(summary.buckets).fill(null))
        for (const bucket of summary.sensors.find(entry => entry.sensor === sensor)?.buckets ?? []) {
          for (let column = 0; column < 6; column++) (columns[column] as Array<number | null>)[bucket[0]] = bucket[column + 2] as number
        }
        chart.setData([xs, ...columns] as uPlot.AlignedData)
        chart.setScale('x', { min: from, max: to })
      }
    } finally {
      this.applying = false
    }
    // How many summaries were drawn: what the browser tests wait for.
    this.element.dataset.loaded = String(Number(this.element.dataset.loaded ?? 0) + 1)
    this.bands = [...this.bands.filter(band => !band.sensor), ...summary.gaps.map(gap => ({
      from: epochSeconds(gap.from), to: epochSeconds(gap.to), color: GAP_FILL, sensor: gap.sensor
    }))]
    this.redraw()
  }

  /** Labels drawn on every chart; gaps stay. */
  setLabels (labels: Band[]): void {
    this.bands = [...this.bands.filter(band => band.sensor), ...labels]
    this.redraw()
  }

  destroy (): void {
    clearTimeout(this.zoomTimer)
    for (const chart of this.charts.values()) chart.destroy()
  }

  private redraw (): void {
    for (const chart of this.charts.values()) chart.redraw(false, false)
  }

  private chartOptions (sensor: SensorName, width: number): uPlot.Options {
    const series: uPlot.Series[] = [{}]
    for (const axis of AXES) {
      series.push({ label: `${axis.name} min`, stroke: axis.color, width: 1, spanGaps: false })
      series.push({ label: `${axis.name} max`, stroke: axis.color, width: 1, spanGaps: false })
    }
    return {
      width,
      height: this.options.height ?? 180,
      series,
      bands: AXES.map((axis, i) => ({ series: [2 * i + 2, 2 * i + 1], fill: axis.fill })),
      scales: { x: { time: true } },
      legend: { show: false },
      cursor: { sync: { key: 'session-plot', setSeries: false }, drag: { x: true, y: false, setScale: true } },
      hooks: {
        drawClear: [chart => this.paintBands(chart, sensor)],
        setScale: [(chart, key) => this.scaled(chart, key)],
        setSelect: [chart => this.selected(chart)]
      }
    }
  }

  private paintBands (chart: uPlot, sensor: SensorName): void {
    const { ctx, bbox } = chart
    ctx.save()
    for (const band of this.bands) {
      if (band.sensor && band.sensor !== sensor) continue
      const left = Math.max(bbox.left, chart.valToPos(band.from, 'x', true))
      const right = Math.min(bbox.left + bbox.width, chart.valToPos(band.to, 'x', true))
      if (right <= left) continue
      ctx.fillStyle = band.color
      // Labels fill the upper part of the plot, gaps all of it, so both stay visible where they meet.
      const height = band.sensor ? bbox.height : bbox.height * 0.12
      ctx.globalAlpha = band.sensor ? 1 : 0.9
      ctx.fillRect(left, bbox.top, Math.max(1, right - left), height)
      if (!band.sensor) {
        ctx.globalAlpha = 0.18
        ctx.fillRect(left, bbox.top, Math.max(1, right - left), bbox.height)
      }
    }
    ctx.restore()
  }

  private scaled (chart: uPlot, key: string): void {
    if (key !== 'x' || this.applying) return
    const { min, max } = chart.scales.x ?? {}
    if (min === undefined || max === undefined || min === null || max === null) return
    // uPlot reports scale changes after its own batching, so the page's setScale may arrive after `applying` ended.
    const tolerance = this.shown ? (this.shown[1] - this.shown[0]) * 1e-6 : 0
    if (this.shown && Math.abs(min - this.shown[0]) <= tolerance && Math.abs(max - this.shown[1]) <= tolerance) return
    this.applying = true
    try {
      for (const other of this.charts.values()) if (other !== chart) other.setScale('x', { min, max })
    } finally {
      this.applying = false
    }
    clearTimeout(this.zoomTimer)
    this.zoomTimer = setTimeout(() => this.options.onZoom?.(min, max), 150)
  }

  private selected (chart: uPlot): void {
    if (!this.labelling || chart.select.width <= 0) return
    const from = chart.posToVal(chart.select.left, 'x')
    const to = chart.posToVal(chart.select.left + chart.select.width, 'x')
    this.options.onSelect?.(from, to)
  }
}
