// The dashboard's list table: a scrolling wrapper, one header row of column headings, the rows.
import type { ComponentChildren } from 'preact';

/** A table of rows under column headings (`id` names it for links and tests). */
export function ListTable({
  id,
  headings,
  children,
}: {
  id?: string;
  headings: string[];
  children: ComponentChildren;
}) {
  return (
    <div class="scroll">
      <table class="list" id={id}>
        <thead>
          <tr>
            {headings.map((h) => (
              <th key={h} scope="col">
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
