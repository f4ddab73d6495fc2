/** A child of h(): nodes and text; null, undefined and false are skipped. */
export type Child = Node | string | number | null | undefined | false

type Attributes = Record<string, string | number | boolean | EventListener | null | undefined>

/**
 * Builds an element. `on…` attributes become listeners, booleans toggle
 * attributes, everything else is set as text: the page never parses HTML
 * from data, and never sets a style attribute (the CSP forbids inline styles).
 */
export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value)
    else if (value === true) element.setAttribute(name, '')
    else element.setAttribute(name, String(value))
  }
  append(element, children)
  return element
}

export function append (parent: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    parent.append(typeof child === 'number' ? String(child) : child)
  }
}

/** Replaces an element's content. */
export function fill (parent: Element, ...children: Child[]): void {
  parent.replaceChildren()
  append(parent, children)
}
