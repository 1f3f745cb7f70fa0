"""SUN397: 397 scene categories, 108,754 images (Xiao et al., CVPR 2010), read with its official partitions, or from
C3Box's train/ val/ folders of its 300-class subset.

The image archive (``SUN397.tar.gz``) extracts to ``SUN397/`` holding ``ClassName.txt`` (the 397 categories as
``/a/abbey``, ``/a/apartment_building/outdoor``, sorted: the class ids) and one folder per category
(``a/abbey/sun_*.jpg``, ``a/apartment_building/outdoor/sun_*.jpg``); torchvision's SUN397 reads the same tree. The
benchmark's split is a separate archive, ``Partitions.zip``: ``Training_NN.txt`` and ``Testing_NN.txt`` (NN = 01..10),
each listing 50 images a class (``/a/abbey/sun_aaalbzqrimafwbiv.jpg``), so 19,850 training and 19,850 test images per
partition; ``data.sun397.partition`` picks one (1 by default, as CoOp), from a ``Partitions/`` folder inside
``SUN397/`` or beside it. A class's name is CoOp's: the path after the letter, last part first, slashes and
underscores read as spaces (``/a/apartment_building/outdoor`` -> "outdoor apartment building", ``/a/abbey`` ->
"abbey").

C3Box's ``sun`` is not a subset of these 397 classes: its 300 classes are SUN397's first-level category folders
(``b/balcony``, over ``exterior`` and ``interior``, is one class, "balcony"), the first 300 of those 362 in sorted
order (``abbey`` .. ``ski_slope``), named by the folder with underscores read as spaces: its labels.json is exactly
that (which sub-categories' images its archive puts in such a class could not be checked here). seca reads C3Box's
``train/<class>/`` and ``val/<class>/`` as such: classes out of the 362 first-level categories, numbered in sorted
folder order (ImageFolder's, the official order), said in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...config import DataConfig, between, section, setting
from ...errors import SecaError
from ..images import shown
from ._lists import c3box_matched, is_folder, listed_in_folders, lists_split, text_lines
from .base import BenchmarkData, DataSet, register

# ClassName.txt as distributed (less each line's leading "/"): the 397 categories in the order of the class ids
CLASSES = """
a/abbey a/airplane_cabin a/airport_terminal a/alley a/amphitheater a/amusement_arcade a/amusement_park
a/anechoic_chamber a/apartment_building/outdoor a/apse/indoor a/aquarium a/aqueduct a/arch a/archive
a/arrival_gate/outdoor a/art_gallery a/art_school a/art_studio a/assembly_line a/athletic_field/outdoor
a/atrium/public a/attic a/auditorium a/auto_factory b/badlands b/badminton_court/indoor b/baggage_claim
b/bakery/shop b/balcony/exterior b/balcony/interior b/ball_pit b/ballroom b/bamboo_forest b/banquet_hall b/bar
b/barn b/barndoor b/baseball_field b/basement b/basilica b/basketball_court/outdoor b/bathroom b/batters_box b/bayou
b/bazaar/indoor b/bazaar/outdoor b/beach b/beauty_salon b/bedroom b/berth b/biology_laboratory b/bistro/indoor
b/boardwalk b/boat_deck b/boathouse b/bookstore b/booth/indoor b/botanical_garden b/bow_window/indoor
b/bow_window/outdoor b/bowling_alley b/boxing_ring b/brewery/indoor b/bridge b/building_facade b/bullring
b/burial_chamber b/bus_interior b/butchers_shop b/butte c/cabin/outdoor c/cafeteria c/campsite c/campus
c/canal/natural c/canal/urban c/candy_store c/canyon c/car_interior/backseat c/car_interior/frontseat c/carrousel
c/casino/indoor c/castle c/catacomb c/cathedral/indoor c/cathedral/outdoor c/cavern/indoor c/cemetery c/chalet
c/cheese_factory c/chemistry_lab c/chicken_coop/indoor c/chicken_coop/outdoor c/childs_room c/church/indoor
c/church/outdoor c/classroom c/clean_room c/cliff c/cloister/indoor c/closet c/clothing_store c/coast c/cockpit
c/coffee_shop c/computer_room c/conference_center c/conference_room c/construction_site c/control_room
c/control_tower/outdoor c/corn_field c/corral c/corridor c/cottage_garden c/courthouse c/courtroom c/courtyard
c/covered_bridge/exterior c/creek c/crevasse c/crosswalk c/cubicle/office d/dam d/delicatessen d/dentists_office
d/desert/sand d/desert/vegetation d/diner/indoor d/diner/outdoor d/dinette/home d/dinette/vehicle d/dining_car
d/dining_room d/discotheque d/dock d/doorway/outdoor d/dorm_room d/driveway d/driving_range/outdoor d/drugstore
e/electrical_substation e/elevator/door e/elevator/interior e/elevator_shaft e/engine_room e/escalator/indoor
e/excavation f/factory/indoor f/fairway f/fastfood_restaurant f/field/cultivated f/field/wild f/fire_escape
f/fire_station f/firing_range/indoor f/fishpond f/florist_shop/indoor f/food_court f/forest/broadleaf
f/forest/needleleaf f/forest_path f/forest_road f/formal_garden f/fountain g/galley g/game_room g/garage/indoor
g/garbage_dump g/gas_station g/gazebo/exterior g/general_store/indoor g/general_store/outdoor g/gift_shop
g/golf_course g/greenhouse/indoor g/greenhouse/outdoor g/gymnasium/indoor h/hangar/indoor h/hangar/outdoor h/harbor
h/hayfield h/heliport h/herb_garden h/highway h/hill h/home_office h/hospital h/hospital_room h/hot_spring
h/hot_tub/outdoor h/hotel/outdoor h/hotel_room h/house h/hunting_lodge/outdoor i/ice_cream_parlor i/ice_floe
i/ice_shelf i/ice_skating_rink/indoor i/ice_skating_rink/outdoor i/iceberg i/igloo i/industrial_area i/inn/outdoor
i/islet j/jacuzzi/indoor j/jail/indoor j/jail_cell j/jewelry_shop k/kasbah k/kennel/indoor k/kennel/outdoor
k/kindergarden_classroom k/kitchen k/kitchenette l/labyrinth/outdoor l/lake/natural l/landfill l/landing_deck
l/laundromat l/lecture_room l/library/indoor l/library/outdoor l/lido_deck/outdoor l/lift_bridge l/lighthouse
l/limousine_interior l/living_room l/lobby l/lock_chamber l/locker_room m/mansion m/manufactured_home
m/market/indoor m/market/outdoor m/marsh m/martial_arts_gym m/mausoleum m/medina m/moat/water m/monastery/outdoor
m/mosque/indoor m/mosque/outdoor m/motel m/mountain m/mountain_snowy m/movie_theater/indoor m/museum/indoor
m/music_store m/music_studio n/nuclear_power_plant/outdoor n/nursery o/oast_house o/observatory/outdoor o/ocean
o/office o/office_building o/oil_refinery/outdoor o/oilrig o/operating_room o/orchard o/outhouse/outdoor p/pagoda
p/palace p/pantry p/park p/parking_garage/indoor p/parking_garage/outdoor p/parking_lot p/parlor p/pasture p/patio
p/pavilion p/pharmacy p/phone_booth p/physics_laboratory p/picnic_area p/pilothouse/indoor p/planetarium/outdoor
p/playground p/playroom p/plaza p/podium/indoor p/podium/outdoor p/pond p/poolroom/establishment p/poolroom/home
p/power_plant/outdoor p/promenade_deck p/pub/indoor p/pulpit p/putting_green r/racecourse r/raceway r/raft
r/railroad_track r/rainforest r/reception r/recreation_room r/residential_neighborhood r/restaurant
r/restaurant_kitchen r/restaurant_patio r/rice_paddy r/riding_arena r/river r/rock_arch r/rope_bridge r/ruin
r/runway s/sandbar s/sandbox s/sauna s/schoolhouse s/sea_cliff s/server_room s/shed s/shoe_shop s/shopfront
s/shopping_mall/indoor s/shower s/skatepark s/ski_lodge s/ski_resort s/ski_slope s/sky s/skyscraper s/slum
s/snowfield s/squash_court s/stable s/stadium/baseball s/stadium/football s/stage/indoor s/staircase s/street
s/subway_interior s/subway_station/platform s/supermarket s/sushi_bar s/swamp s/swimming_pool/indoor
s/swimming_pool/outdoor s/synagogue/indoor s/synagogue/outdoor t/television_studio t/temple/east_asia
t/temple/south_asia t/tennis_court/indoor t/tennis_court/outdoor t/tent/outdoor t/theater/indoor_procenium
t/theater/indoor_seats t/thriftshop t/throne_room t/ticket_booth t/toll_plaza t/topiary_garden t/tower t/toyshop
t/track/outdoor t/train_railway t/train_station/platform t/tree_farm t/tree_house t/trench u/underwater/coral_reef
u/utility_room v/valley v/van_interior v/vegetable_garden v/veranda v/veterinarians_office v/viaduct v/videostore
v/village v/vineyard v/volcano v/volleyball_court/indoor v/volleyball_court/outdoor w/waiting_room
w/warehouse/indoor w/water_tower w/waterfall/block w/waterfall/fan w/waterfall/plunge w/watering_hole w/wave
w/wet_bar w/wheat_field w/wind_farm w/windmill w/wine_cellar/barrel_storage w/wine_cellar/bottle_storage
w/wrestling_ring/indoor y/yard y/youth_hostel
""".split()


def class_name(path: str) -> str:
    """A category's name as the prompts read it (CoOp's rule): its path after the letter, last part first, slashes
    and underscores as spaces (``/a/apartment_building/outdoor`` -> "outdoor apartment building")."""
    return " ".join(path.strip("/").split("/")[:0:-1]).replace("_", " ")


def first_level(classes: Sequence[str]) -> list[str]:
    """The first-level category folders (``b/balcony``) of ``classes``, sorted: the classes C3Box's ``sun`` draws on."""
    return sorted({"/".join(c.strip("/").split("/")[:2]) for c in classes})


@dataclass(frozen=True)
class Sun397Config:
    """SUN397's official split."""

    partition: int = setting(
        1,
        "SUN397's official partition (1..10): Partitions/Training_NN.txt and Testing_NN.txt, 50 training and 50 test "
        "images a class",
        between(1, 10),
    )


@register
class SUN397(DataSet):
    """SUN397: 397 scene categories, 19,850 training and 19,850 test images (official partition 1 of 10, of 108,754)."""

    name = "sun397"
    template = "a photo of a {}."
    benchmarks = ("b0-inc30", "b150-inc30")  # on C3Box's 300 first-level categories
    c3box_key = "sun"
    obtain = (
        "download http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz (37 GB) and "
        "https://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip, extract both in data.root (SUN397/ "
        "and Partitions/); C3Box's train/ and val/ folders of its 300 SUN classes are read too"
    )

    @dataclass(frozen=True)
    class Config:
        sun397: Sun397Config = section(Sun397Config)

    def __init__(self) -> None:
        self._first_level = False  # True while the classes are first-level categories (C3Box's folders)

    def load(self, data: DataConfig) -> BenchmarkData:
        root = self.locate(data, self._looks_right)
        folders = self.c3box_folders(root) if not (root / "ClassName.txt").is_file() else None
        if folders is not None:
            return self._c3box(data, folders)
        return self._official(data, root)

    def c3box_names(self, official: Sequence[str]) -> list[str] | None:
        """C3Box's names where the classes are first-level categories (its ``sun``: the same names); none for the 397
        classes, which C3Box does not use."""
        return list(official) if self._first_level else None

    # ---- the archive's layout --------------------------------------------------------------------------------
    def _looks_right(self, path: Path) -> bool:
        official = (path / "ClassName.txt").is_file() and not (path / "Training_01.txt").is_file()  # not Partitions/
        return official or self.c3box_folders(path) is not None

    def _official(self, data: DataConfig, root: Path) -> BenchmarkData:
        classes = []
        for n, line in text_lines(root / "ClassName.txt", "SUN397/ holds ClassName.txt as distributed"):
            path = line.strip("/")
            parts = path.split("/")
            if not line.startswith("/") or len(parts) < 2 or {"", ".", ".."} & set(parts) or path in classes:
                raise SecaError(
                    f"{root / 'ClassName.txt'} line {n}: '{shown(line)}' is not a new category ('/a/abbey')"
                )
            classes.append(path)
        index = {c: k for k, c in enumerate(classes)}
        number = f"{data.sun397.partition:02d}"
        partitions = {
            split: self._read_partition(root, f"{split}_{number}.txt", index) for split in ("Training", "Testing")
        }
        folders = {k: root / c for k, c in enumerate(classes) if is_folder(root / c)}
        none = (
            f"{root} holds none of the {len(classes)} category folders that ClassName.txt lists (e.g. '{classes[0]}'); "
            f"{self.obtain}"
        )

        def lacking(split: str, k: int) -> str:
            return (
                f"{root / classes[k]} holds none of the images that {partitions[split][0].name} lists for it; add them "
                "or remove the folder"
            )

        lists = [(split, entries) for split, (_, entries) in partitions.items()]
        found = listed_in_folders(lists, folders, none, lacking)
        split = f"official partition {number} (Training_{number}/Testing_{number})"
        return lists_split(self, data, [class_name(c) for c in classes], found, split=split)

    @staticmethod
    def _read_partition(root: Path, file: str, index: dict[str, int]) -> tuple[Path, list[tuple[int, str]]]:
        """The partition file ``file`` (in ``SUN397/Partitions/``, or ``Partitions/`` beside ``SUN397/``) and the
        ``(class id, image file name)`` of each of its lines."""
        places = [root / "Partitions", root.parent / "Partitions", root]
        path = next((p / file for p in places if (p / file).is_file()), places[0] / file)
        what = (
            f"SUN397's official partitions (Partitions.zip) go in {places[0]} or {places[1]}; get them from "
            "https://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip"
        )
        entries = []
        for n, line in text_lines(path, what):
            category, _, name = line.strip("/").rpartition("/")
            if not line.startswith("/") or "/" not in category or not name:
                raise SecaError(f"{path} line {n}: '{shown(line)}' is not '/<letter>/<category>/<image file>'")
            if category not in index:
                raise SecaError(f"{path} line {n}: the category '/{shown(category)}' is not in ClassName.txt")
            entries.append((index[category], name))
        return path, entries

    # ---- C3Box's layout ---------------------------------------------------------------------------------------
    def _c3box(self, data: DataConfig, folders: tuple[Path, Path]) -> BenchmarkData:
        """C3Box's train/<class>/ and val/<class>/: first-level categories numbered in sorted folder order
        (ImageFolder's, so C3Box's class ids and labels.json line up), each folder matched to a category whatever its
        spelling."""
        categories = first_level(CLASSES)
        self._first_level = True
        return c3box_matched(
            self,
            data,
            folders,
            categories,
            [c.split("/")[1].replace("_", " ") for c in categories],
            unknown="a SUN397 category (first-level folders such as 'abbey')",
            kind="category",
            spelling=lambda c: c.split("/")[1],
            note=lambda ids: self.subset_note(
                len(ids), len(categories), "first-level categories (C3Box's SUN classes)"
            ),
        )
