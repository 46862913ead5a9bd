/** The page sizes of the list endpoints, shared with the `admin` command's `--limit`. */
export const maxPageLimit = 500;
export const defaultPageLimit = 100;
